"""A dozen small optimization problems, each written once for both libraries.

The workflows' functions are plain module-level functions, so that both libraries
show them by their own names. Each builder takes a library's adapter
(:class:`~opto_problems.runner.Lib`), wraps the functions with that library's
``bundle``, and returns a task: its trainable parameters (the same initial values on
both sides) and a ``run()`` that executes the traced workflow and returns the output
to give feedback to, the feedback text and whether the problem is solved. Feedback is
computed from plain values, so both libraries see the same words.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from opto_problems.runner import Lib, Outcome, Problem, Spec, Task

# -- the workflows' functions, wrapped by each library's bundle ----------------------------


def square(v):
    """Return v squared."""
    return v * v


def room_temperature(setpoint):
    """The temperature the room settles at (degrees C): heat loss keeps it 3 degrees below the setpoint."""
    return setpoint - 3


def line(x, slope, offset):
    """Return slope * x + offset."""
    return slope * x + offset


def collect(*values):
    """The outputs, in order."""
    return list(values)


def plan(batch_size):
    """Memory (MB) and number of batches to process 1000 examples; each example in a batch needs 12 MB."""
    return {"memory_mb": batch_size * 12, "batches": math.ceil(1000 / batch_size)}


def is_even(n):
    """Return True when n is even."""
    return n % 2 == 1


def average(values):
    """Return the mean of the list values, or 0.0 for an empty list."""
    return sum(values) / len(values)


def slugify(title):
    """Turn a title into a URL slug: lowercase words of letters and digits joined by single hyphens."""
    return title.lower()


def heading(title):
    """The page heading: the title, trimmed, in an <h1> tag."""
    return f"<h1>{title.strip()}</h1>"


def invoice_date(pattern):
    """The order date (5 March 2024) formatted with the strftime pattern."""
    return date(2024, 3, 5).strftime(pattern)


def banner(tagline):
    """The banner text: the tagline without surrounding spaces."""
    return tagline.strip()


_HELLO = {"English": "Hello", "French": "Bonjour", "Spanish": "Hola", "German": "Hallo"}


def greet(language, name):
    """Greet the customer by name in the given language."""
    word = _HELLO.get(language)
    return f"{word}, {name}!" if word else f"[no greeting in {language}]"


def flour_grams(portions):
    """Grams of flour for the given number of portions (100 g each)."""
    return 100 * portions


def label(grams, unit):
    """The label: the amount of flour converted to the unit."""
    per_unit = {"g": 1.0, "kg": 1000.0, "lb": 453.6}.get(unit)
    return f"{round(grams / per_unit, 2):g} {unit}" if per_unit else f"[unknown unit {unit}]"


# -- numbers from text feedback ------------------------------------------------------------


def square_target(lib: Lib) -> Task:
    x = lib.param(3.0, "x", Spec("number", 0, 20))
    op = lib.bundle()(square)

    def run() -> Outcome:
        y = op(x)
        return Outcome(y, f"The output is {y.data:g}; it should be 49.", abs(y.data - 49) <= 0.5)

    return Task([x], run)


def thermostat(lib: Lib) -> Task:
    setpoint = lib.param(15, "setpoint", Spec("integer", 10, 30))
    op = lib.bundle()(room_temperature)

    def run() -> Outcome:
        room = op(setpoint)
        feel = "too cold" if room.data < 21 else "too warm" if room.data > 23 else "comfortable"
        text = f"The room is at {room.data} degrees C and feels {feel}; people are comfortable from 21 to 23 degrees C."
        return Outcome(room, text, feel == "comfortable")

    return Task([setpoint], run)


def line_fit(lib: Lib) -> Task:
    slope = lib.param(1.0, "slope", Spec("number"))
    offset = lib.param(0.0, "offset", Spec("number"))
    line_op, collect_op = lib.bundle()(line), lib.bundle()(collect)
    targets = (5.0, 7.0, 9.0)

    def run() -> Outcome:
        out = collect_op(*(line_op(lib.node(float(x), f"x{x}"), slope, offset) for x in (1, 2, 3)))
        got = [round(v, 3) for v in out.data]
        text = f"The outputs for x = 1, 2, 3 are {got}; they should be {list(targets)}."
        return Outcome(out, text, all(abs(g - t) <= 0.05 for g, t in zip(got, targets, strict=True)))

    return Task([slope, offset], run)


def batch_size(lib: Lib) -> Task:
    size = lib.param(64, "batch_size", Spec("integer", 1, 64))
    op = lib.bundle()(plan)

    def run() -> Outcome:
        out = op(size)
        memory, batches = out.data["memory_mb"], out.data["batches"]
        text = (
            f"The plan needs {memory} MB of memory (the limit is 256 MB) and {batches} batches "
            "(at most 50 batches fit in the time allowed)."
        )
        return Outcome(out, text, memory <= 256 and batches <= 50)

    return Task([size], run)


# -- code repair from failing tests --------------------------------------------------------


def _code_task(lib: Lib, fn: Any, cases: list[tuple[tuple[Any, ...], Any]]) -> Task:
    """A task that repairs ``fn`` (its code is the parameter) from its test cases. The
    output given the feedback is the error node of the first call that raised, else all
    the results together; the feedback lists every failing case."""
    op, results = lib.bundle(trainable=True)(fn), lib.bundle()(collect)

    def run() -> Outcome:
        outputs, failures, error_node = [], [], None
        for i, (args, expected) in enumerate(cases):
            shown = f"{fn.__name__}({', '.join(map(repr, args))})"
            out, error = lib.call(op, *(lib.node(a, f"case{i}_{j}") for j, a in enumerate(args)))
            if error is not None:
                error_node = out if error_node is None else error_node
                failures.append(f"{shown} raised {error}; expected {expected!r}.")
                continue
            outputs.append(out)
            if out.data != expected:
                failures.append(f"{shown} returned {out.data!r}; expected {expected!r}.")
        output = error_node if error_node is not None else results(*outputs)
        return Outcome(output, " ".join(failures) if failures else "All tests pass.", not failures)

    return Task([op.parameter], run)


def fix_is_even(lib: Lib) -> Task:
    return _code_task(lib, is_even, [((2,), True), ((3,), False), ((10,), True), ((7,), False)])


def fix_average(lib: Lib) -> Task:
    return _code_task(lib, average, [(([2, 4],), 3.0), (([],), 0.0), (([5],), 5.0)])


def fix_slugify(lib: Lib) -> Task:
    cases = [
        (("Hello World",), "hello-world"),
        (("  Trace is   new ",), "trace-is-new"),
        (("Rock & Roll!",), "rock-roll"),
        (("already-a-slug",), "already-a-slug"),
    ]
    return _code_task(lib, slugify, cases)


# -- constrained strings -------------------------------------------------------------------


def short_title(lib: Lib) -> Task:
    long = "An extremely long and wordy title about the many benefits of drinking water every single day"
    title = lib.param(long, "title", Spec("text"))
    op = lib.bundle()(heading)

    def run() -> Outcome:
        out = op(title)
        text = out.data[4:-5]
        problems = []
        if len(text) > 30:
            problems.append(f"the title has {len(text)} characters and at most 30 are allowed")
        if "water" not in text.lower():
            problems.append("the title must mention water")
        feedback = f"The heading is {out.data!r}: " + ("; ".join(problems) if problems else "it is fine") + "."
        return Outcome(out, feedback, not problems)

    return Task([title], run)


def date_format(lib: Lib) -> Task:
    pattern = lib.param("%d/%m/%Y", "pattern", Spec("text"))
    op = lib.bundle()(invoice_date)

    def run() -> Outcome:
        out = op(pattern)
        text = f"The invoice shows the date as {out.data!r}; it must read 'March 05, 2024'."
        return Outcome(out, text, out.data == "March 05, 2024")

    return Task([pattern], run)


def tagline(lib: Lib) -> Task:
    line = lib.param("Fresh Coffee Delivered To Your Door Every Single Morning", "tagline", Spec("text"))
    op = lib.bundle()(banner)

    def run() -> Outcome:
        out = op(line)
        words = out.data.split()
        broken = []
        if len(words) != 5:
            broken.append(f"it has {len(words)} words and must have exactly 5")
        if out.data != out.data.lower():
            broken.append("it has capital letters and must be all lowercase")
        if not out.data.endswith("."):
            broken.append("it must end with a period")
        verdict = "; ".join(broken) if broken else "it follows every rule"
        return Outcome(out, f"The banner reads {out.data!r}: {verdict}.", not broken)

    return Task([line], run)


# -- categorical choices and a two-parameter pipeline ---------------------------------------


def greeting_language(lib: Lib) -> Task:
    language = lib.param("English", "language", Spec("choice", options=tuple(_HELLO)))
    op = lib.bundle()(greet)

    def run() -> Outcome:
        out = op(language, lib.node("Lucia", "name"))
        text = f"The customer from Madrid read {out.data!r} and replied: 'No entiendo. Hable en mi idioma, por favor.'"
        return Outcome(out, text, out.data.startswith("Hola"))

    return Task([language], run)


def recipe_label(lib: Lib) -> Task:
    portions = lib.param(2, "portions", Spec("integer", 1, 12))
    unit = lib.param("g", "unit", Spec("choice", options=("g", "kg", "lb")))
    grams_op, label_op = lib.bundle()(flour_grams), lib.bundle()(label)

    def run() -> Outcome:
        out = label_op(grams_op(portions), unit)
        text = f"The label reads {out.data!r}. The bakery needs the flour for 6 portions, labelled in kilograms."
        return Outcome(out, text, out.data == "0.6 kg")

    return Task([portions, unit], run)


_AVERAGE = "def average(values):\n    return sum(values) / len(values) if values else 0.0\n"
_SLUG = "def slugify(title):\n    import re\n    return '-'.join(re.findall(r'[a-z0-9]+', title.lower()))\n"

PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem("square_target", "number", square_target, (7.0,)),
        Problem("thermostat", "number", thermostat, (25,)),
        Problem("line_fit", "pipeline", line_fit, (2.0, 3.0)),
        Problem("batch_size", "number", batch_size, (20,)),
        Problem("fix_is_even", "code", fix_is_even, ("def is_even(n):\n    return n % 2 == 0\n",)),
        Problem("fix_average", "code", fix_average, (_AVERAGE,)),
        Problem("fix_slugify", "code", fix_slugify, (_SLUG,)),
        Problem("short_title", "string", short_title, ("Drink water every day",)),
        Problem("date_format", "string", date_format, ("%B %d, %Y",)),
        Problem("tagline", "string", tagline, ("fresh coffee at your door.",)),
        Problem("greeting_language", "choice", greeting_language, ("Spanish",)),
        Problem("recipe_label", "pipeline", recipe_label, (6, "kg")),
    )
}

#: A small, quick subset: one number, one code repair, one choice.
QUICK = ("square_target", "fix_is_even", "greeting_language")
