"""Check the answer before accepting it: a programmatic check, then self-check on the evidence."""

from verity import LlamaCppModel, ModelSettings, RunSettings, embedded_model_path, run_sync
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset
from verity.verify import AllOf, Candidate, Programmatic, SelfCheck


def gives_a_number(candidate: Candidate) -> bool:
    return any(character.isdigit() for character in candidate.answer)


model = LlamaCppModel(embedded_model_path(), ModelSettings(temperature=0))
tools = FunctionToolset([calculator])
result = run_sync(
    "A shop sells 17 boxes of 24 apples and 5 loose apples. How many apples is that?",
    model=model,
    toolsets=[tools],
    # self-check recomputes the answer's arithmetic, traces every number to the task or a tool
    # result, runs read-only tools again, and asks the model for a schema-bound verdict
    verifier=AllOf(Programmatic(gives_a_number), SelfCheck(model, toolsets=[tools])),
    settings=RunSettings(max_verify_rounds=2),
)
print(result.answer, "(verified)" if result.verified else "(unverified: best answer)")
