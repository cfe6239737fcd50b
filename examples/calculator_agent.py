"""Ask the embedded model an arithmetic question; it answers with the calculator tool."""

import sys

from verity import Agent

# The embedded model with Verity's calculator, traced where `verity run` traces (`verity logs`).
agent = Agent()
result = agent.run_sync("A shop sells 17 boxes of 24 apples. How many apples is that?")
agent.close()
if result.status != "answered":  # "None", a refusal, facts no tool returned: not an answer
    sys.exit(f"No reliable answer ({result.status}): {result.reason}")
print(result.answer)
