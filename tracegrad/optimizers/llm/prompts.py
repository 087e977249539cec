"""The fixed text of the LLM optimizers' prompts.

System prompts are short and never change between steps, so providers can cache
them; everything that changes goes in the user message.
"""

from __future__ import annotations

from tracegrad._text import marker

#: How a prompt shows where text was cut (the one marker, with N for the count).
_CUT = marker("N")  # type: ignore[arg-type]

REPLY_FORMAT = (
    'Reply with a JSON object: {"reasoning": "<in a sentence or two, what the feedback implies for the variables>", '
    '"answer": <answer if the instruction asks for one, else null>, "suggestion": {"<variable>": '
    "<new value>}}. Suggest only #Variables, each value of its kind; code must be a complete "
    "definition with the same function name and signature. An empty suggestion changes nothing."
)

OPTOPRIME_SYSTEM = (
    "You improve a traced Python program by changing its #Variables. #Code lists its calls in "
    "order, short results after ->; #Functions documents them; #Inputs are fixed; #Intermediates "
    "and #Outputs were computed; #History has past variables and feedback; #Feedback judges the "
    "outputs. Values are Python literals; code and errors are in ``` blocks; "
    f"{_CUT} marks omitted text.\n" + REPLY_FORMAT
)

OPRO_SYSTEM = (
    "You propose better values for some variables. #Variables shows the current values (with "
    "constraints after #), #History earlier values and their feedback (oldest first), #Feedback "
    f"the feedback on the current values. {_CUT} marks omitted text.\n" + REPLY_FORMAT
)

OPTOPRIME_OBJECTIVE = "Change #Variables to improve the outputs according to #Feedback."
OPRO_OBJECTIVE = "Propose values for #Variables that will get better feedback than all earlier ones."
