"""Ask the embedded model an arithmetic question; it answers with the calculator tool."""

import sys

from verity import LlamaCppModel, ModelSettings, embedded_model_path, run_sync
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset

model = LlamaCppModel(embedded_model_path(), ModelSettings(temperature=0))
result = run_sync(
    "A shop sells 17 boxes of 24 apples. How many apples is that?",
    model=model,
    toolsets=[FunctionToolset([calculator])],
)
if result.status != "answered":  # "None", a refusal, facts no tool returned: not an answer
    sys.exit(f"No reliable answer ({result.status}): {result.reason}")
print(result.answer)
