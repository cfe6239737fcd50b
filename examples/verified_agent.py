"""Check the answer before accepting it: your own check, then self-check, which recomputes it."""

from verity import LlamaCppModel, ModelSettings, RunSettings, embedded_model_path, run_sync
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset
from verity.verify import AllOf, Candidate, Programmatic, SelfCheck


def gives_a_number(candidate: Candidate) -> bool:
    return any(character.isdigit() for character in candidate.answer)


model = LlamaCppModel(embedded_model_path(), ModelSettings(temperature=0))
tools = FunctionToolset([calculator])
# self-check recomputes the answer's arithmetic, traces each of its numbers to the task or a tool
# result, and has the model write programs for the task alone: the answer is verified only when
# they compute it too. The verifier runs on a context of its own that shares the weights.
checker = SelfCheck(model.with_own_context(), toolsets=[tools])
result = run_sync(
    "A shop sells 17 boxes of 24 apples and 5 loose apples. How many apples is that?",
    model=model,
    toolsets=[tools],
    verifier=AllOf(Programmatic(gives_a_number), checker),
    settings=RunSettings(max_verify_rounds=2),
)
print(result.answer, "(verified)" if result.verified else "(NOT verified: do not rely on it)")
