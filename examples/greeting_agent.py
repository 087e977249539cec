"""The greeting agent of the Trace paper's library, in tracegrad: a prompt and code trained together.

A sales assistant greets a customer in the customer's language, by name. It asks a
task model two things under its system prompt -- which language the message is in
(``instruct1``) and the customer's name (``instruct2``) -- with ``tg.call_llm``, a model
call recorded as one operation of the trace, then two trainable methods
turn the replies into a greeting: ``decide_lang`` maps the first reply to ``"en"`` or
``"es"`` and ``greet`` writes "Hello, John!" or "Hola, Juan!". At first ``decide_lang``
returns None, ``greet`` always says "Hola", and the name instruction makes the model
answer in a sentence. Feedback on the greeting reaches both the instructions (through
the model calls) and the code, and OptoPrime improves them until every customer is
greeted correctly.

    python examples/greeting_agent.py                      # the embedded model if installed, else offline stand-ins
    python examples/greeting_agent.py --model openai/gpt-4o-mini   # or set TRACEGRAD_MODEL
"""

from __future__ import annotations

import argparse
import json
import re

import tracegrad as tg

CUSTOMERS = [("Hola, soy Juan.", "es", "Juan"), ("Hello, I'm John.", "en", "John")]
LANGUAGES = {"es": ("Spanish", "Hola"), "en": ("English", "Hello")}


class Agent(tg.Module):
    """Greets a customer: two questions to a task model, then trainable code."""

    def __init__(self, system_prompt: str, llm: tg.LLM) -> None:
        self.llm = llm
        self.system_prompt = system_prompt  # fixed: a plain string
        self.instruct1 = tg.node("Decide the language", trainable=True)
        self.instruct2 = tg.node("Extract name if it's there", trainable=True)

    def forward(self, user_query):
        response = tg.call_llm(self.system_prompt, self.instruct1, user_query, llm=self.llm)
        en_or_es = self.decide_lang(response)
        user_name = tg.call_llm(self.system_prompt, self.instruct2, user_query, llm=self.llm)
        return self.greet(en_or_es, user_name)

    @tg.bundle(trainable=True)
    def decide_lang(self, response):
        """Map the language into a variable"""
        return

    @tg.bundle(trainable=True)
    def greet(self, lang, user_name):
        """Produce a greeting based on the language"""
        greeting = "Hola"
        return f"{greeting}, {user_name}!"


def feedback_fn(greeting: str, lang: str, name: str) -> str:
    """The feedback on a greeting to a customer writing in ``lang``: "Correct", or what is wrong."""
    language, hello = LANGUAGES[lang]
    expected = f"{hello}, {name}!"
    if greeting == expected:
        return "Correct"
    problems = []
    if not greeting.startswith(hello):
        problems.append(f"the customer wrote in {language}, so the greeting must be in {language}")
    if f", {name}!" not in greeting:
        problems.append("the greeting must address the customer by their name alone")
    if not problems:  # the right words, with something else around them
        problems.append(f"the greeting must be exactly {expected!r}")
    return f"Incorrect: {'; '.join(problems)} (the greeting was {greeting!r})."


def greet_all(agent: Agent) -> list[tuple[tg.Node, str]]:
    """Greet every customer: ``(output, feedback)`` for each one."""
    results = []
    for query, lang, name in CUSTOMERS:
        try:
            greeting = agent(tg.node(query, name="user_query"))
            feedback = feedback_fn(greeting.data, lang, name)
        except tg.ExecutionError as err:  # the agent's code crashed: the error node is the output
            greeting, feedback = err.node, f"The agent raised {err.exception!r}."
        print(f"   {query!r} -> {greeting.data!r}: {feedback}")
        results.append((greeting, feedback))
    return results


# -- stand-ins for models, so the example runs offline ------------------------------------


def stand_in_task_model(request) -> str:
    """NOT a language model: answers the agent's two questions from keywords of the
    message, in a sentence unless asked for the name only."""
    instruction, query = (m["content"] for m in request.messages[1:3])
    if "language" in instruction.lower():
        spanish = any(word in query.lower() for word in ("hola", "soy", "buenos"))
        return f"The message is in {'Spanish' if spanish else 'English'}."
    found = re.search(r"(?:soy|I'm|I am|name is) (\w+)", query)
    name = found.group(1) if found else "there"
    return name if "only" in instruction.lower() else f"The customer's name is {name}."


_DECIDE = '''\
def decide_lang(self, response):
    """Map the language into a variable"""
    return "es" if "spanish" in response.lower() else "en"
'''
_GREET = '''\
def greet(self, lang, user_name):
    """Produce a greeting based on the language"""
    greeting = "Hola" if lang == "es" else "Hello"
    return f"{greeting}, {user_name}!"
'''


def stand_in_optimizer_model(request) -> str:
    """NOT a language model: it knows this one agent. It reads the code, the name
    instruction and the feedback from the prompt and answers with the next of two
    prepared fixes: the language code first, then the instruction. Use --model for a
    real model."""
    prompt = request.messages[1]["content"]
    feedback = prompt.split("#Feedback")[-1]
    if "must be in" in feedback and re.search(r"^def decide_lang.*?\n    return\n", prompt, re.M | re.S):
        reasoning = (
            "decide_lang returns None and greet always says Hola; map the model's answer to es/en "
            "and choose Hola or Hello from it."
        )
        suggestion = {"decide_lang.code": _DECIDE, "greet.code": _GREET}
    elif "name alone" in feedback:
        reasoning = "The model answers the name question with a sentence; ask for the name only."
        suggestion = {"instruct2": "Extract the customer's name. Reply with the name only, nothing else."}
    else:
        reasoning, suggestion = "Every greeting is correct; nothing to change.", {}
    return json.dumps({"reasoning": reasoning, "suggestion": suggestion})


def choose_llms(model: str | None) -> tuple[tg.LLM, tg.LLM]:
    """(task model, optimizer model): the configured model for both, else the stand-ins."""
    model = tg.configured_model(model)  # the argument, $TRACEGRAD_MODEL or the embedded model
    if model:
        llm = tg.LLM(model)
        return llm, llm
    print("(no model configured: using offline stand-ins; pass --model NAME for a real one)")
    task = tg.LLM("stand-in/greeting-task", transport=tg.ScriptedTransport(stand_in_task_model), cache=False)
    optimizer = tg.LLM("stand-in/greeting", transport=tg.ScriptedTransport(stand_in_optimizer_model), cache=False)
    return task, optimizer


def train(task_llm: tg.LLM, optimizer_llm: tg.LLM, epochs: int = 3) -> tuple[int, int]:
    """Greet, give feedback, step; returns the correct greetings before and after. The
    agent ends with the best parameters seen: a step can make things worse, and a later
    one need not undo it."""
    agent = Agent("You are a sales assistant.", task_llm)
    optimizer = tg.OptoPrime(agent, llm=optimizer_llm)
    first, best, best_state = None, -1, agent.state_dict()
    for epoch in range(1, epochs + 2):
        print(f"epoch {epoch}:" if epoch <= epochs else "after the last step:")
        results = greet_all(agent)
        correct = sum(feedback == "Correct" for _, feedback in results)
        first = correct if first is None else first
        if correct > best:
            best, best_state = correct, agent.state_dict()
        if correct == len(CUSTOMERS) or epoch > epochs:
            break
        optimizer.zero_feedback()
        for greeting, feedback in results:
            optimizer.backward(greeting, feedback)
        print(optimizer.step().summary())
    if correct < best:
        print(f"(the last step made it worse, {correct}/{len(CUSTOMERS)}: keeping the best parameters)")
        agent.load_state_dict(best_state)
    print(f"correct greetings: {first}/{len(CUSTOMERS)} -> {best}/{len(CUSTOMERS)}")
    for path, param in agent.named_parameters():
        print(f"--- {path}\n{param.data}")
    return first, best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a litellm model name, or local (default: $TRACEGRAD_MODEL, the embedded model, stand-ins)"
    )
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    train(*choose_llms(args.model), epochs=args.epochs)


if __name__ == "__main__":
    try:
        main()
    except tg.TracegradError as exc:  # a failed model call, a budget reached ...
        raise SystemExit(f"stopped: {exc}") from None
