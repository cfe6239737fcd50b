"""Check the answer before accepting it: your own check, then self-check, which recomputes it."""

from verity import Agent, RunSettings
from verity.verify import Candidate, Programmatic


def gives_a_number(candidate: Candidate) -> bool:
    return any(character.isdigit() for character in candidate.answer)


# self-check recomputes the answer's arithmetic, traces each of its numbers to the task or a tool
# result, and has the model write programs for the task alone: the answer is verified only when
# they compute it too. The verifier runs on a context of its own that shares the weights.
agent = Agent(
    verify="self",
    verifiers=[Programmatic(gives_a_number)],
    settings=RunSettings(max_verify_rounds=2),
)
result = agent.run_sync(
    "A shop sells 17 boxes of 24 apples and 5 loose apples. How many apples is that?"
)
print(result.answer, "(verified)" if result.verified else "(NOT verified: do not rely on it)")
agent.close()
