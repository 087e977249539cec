"""The HTML run report of a real (scripted-model) training run: valid, complete, escaped, self-contained."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser

import pytest
from report_helpers import GOOD_CODE, HOSTILE, PROMPT, make_run

import tracegrad as tg
from tracegrad.visualize.report_charts import bar_chart, line_chart, nice_ticks
from tracegrad.visualize.report_trace import clean_svg

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SVG_VOID_OK = {"path", "polygon", "polyline", "ellipse", "circle", "rect", "line", "text", "g", "title", "stop"}


class Page(HTMLParser):
    """Parses a page, checking that every element is closed in order; keeps tags, attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.problems: list[str] = []
        self.doctype = ""
        self.text: list[str] = []
        self.styles: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID and tag not in SVG_VOID_OK:
            self.problems.append(f"self-closed <{tag}/>")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        (self.styles if self.stack and self.stack[-1] == "style" else self.text).append(data)

    def all_text(self) -> str:
        return "".join(self.text)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    assert page.problems == [] and page.stack == []
    return page


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def html(run_dir):
    path = tg.report(run_dir)
    assert path == run_dir / "report.html"
    return path.read_text(encoding="utf-8")


def log_events(run_dir, kind):
    return [e for line in (run_dir / "log.jsonl").read_text().splitlines() if (e := json.loads(line))["event"] == kind]


def test_the_report_is_one_valid_html_page(html):
    page = parse(html)
    assert page.doctype.lower() == "doctype html"
    assert [t for t, _ in page.tags if t in ("html", "head", "body")] == ["html", "head", "body"]
    names = [t for t, _ in page.tags]
    assert names.index("title") < names.index("body")  # the page's title is in its head
    for section in ("summary", "curves", "versions", "steps", "final", "trace"):
        assert page.find("section", id=section)


def test_the_score_curve_has_a_point_per_step_for_train_and_validation(html, run_dir):
    steps = json.loads((run_dir / "checkpoint.json").read_text())["history"]["steps"]
    page = parse(html)
    train = page.find("polyline", **{"class": "series series-train"})
    validation = page.find("polyline", **{"class": "series series-validation"})
    assert len(train) == len(validation) == 1
    assert len(train[0]["points"].split()) == len(steps)
    assert len(validation[0]["points"].split()) == len(steps) + 1  # the starting score too
    assert len(page.find("rect", **{"class": "bar"})) == 2 * len(steps)  # cost and calls
    assert "0.0025" in page.all_text()  # the cost of a step


def test_the_timeline_shows_each_adopted_version_as_a_text_diff(html):
    page = parse(html)
    assert page.find("span", **{"class": "add"}) and page.find("span", **{"class": "del"})
    text = page.all_text()
    assert f"+{PROMPT.splitlines()[-1]}" in text  # the prompt gained a line
    assert "-    return text\n" not in text  # diff lines are one span each
    assert '+    return text + "!"' in text and "-    return text" in text
    versions = html.split('id="versions"')[1].split("</section>")[0]
    assert versions.count("<li>") == 3  # the start and the two accepted steps (the rejected one adopted nothing)


def test_each_step_shows_its_reasoning_and_the_exact_prompt_and_reply_collapsed(html, run_dir):
    page = parse(html)
    proposals = log_events(run_dir, "proposal")
    assert len(proposals) == 3
    text = page.all_text()
    for proposal in proposals:
        report = proposal["report"]
        assert report["reasoning"] in text
        assert report["reply"] in text
        for message in report["messages"]:
            assert message["content"] in text
    assert (
        len(page.find("details", **{"class": "prompt"})) == 3 and len(page.find("details", **{"class": "reply"})) == 3
    )
    assert not [a for t, a in page.tags if t == "details" and "open" in a]  # collapsed
    assert GOOD_CODE.splitlines()[-1].strip() in text


def test_the_trace_of_the_last_step_is_inline_svg(html):
    trace = html.split('id="trace"')[1]
    if shutil.which("dot") is None:
        assert '<pre class="dot">' in trace and "digraph" in trace
    else:
        assert "<svg" in trace and 'class="graph"' in trace and "<script" not in trace


def test_hostile_values_are_shown_as_text_not_markup(html):
    page = parse(html)
    assert HOSTILE in page.all_text()
    assert not page.find("script") and not [a for t, a in page.tags if any(k.startswith("on") for k in a)]
    assert not [a for t, a in page.tags if t == "img"]


def test_nothing_is_loaded_from_outside_the_page(html):
    page = parse(html)
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "action", "data"):
            value = attrs.get(key) or ""
            assert not value or value.startswith(("#", "data:")), (tag, key, value)
    css = "".join(page.styles)
    assert "@import" not in css and "url(" not in css
    assert not page.find("link") and not page.find("script")
    policy = page.find("meta", **{"http-equiv": "Content-Security-Policy"})
    assert policy and "default-src 'none'" in policy[0]["content"]


def test_the_report_goes_where_asked_and_without_dot_shows_the_dot_source(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no dot program to be found
    path = tg.report(run_dir, tmp_path / "deep" / "r.html")
    assert path == tmp_path / "deep" / "r.html"
    trace = path.read_text(encoding="utf-8").split('id="trace"')[1]
    assert '<pre class="dot">' in trace and "digraph" in trace and "install graphviz" in trace
    assert not list((tmp_path / "deep").glob(".*.tmp"))


def test_a_run_without_a_trace_or_with_a_broken_one_still_gets_its_report(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "trace.json").unlink()
    assert "holds no saved trace" in tg.report(copy).read_text(encoding="utf-8")
    (copy / "trace.json").write_text('{"format": "tracegrad-trace", "nodes": 3}')
    assert "could not be read" in tg.report(copy).read_text(encoding="utf-8")


def test_charts_leave_out_missing_values_and_escape_their_labels():
    chart = line_chart({"a<b": [(0, 0.5), (1, None), (2, float("nan")), (3, 1.0)]}, title="t&t")
    page = parse(str(chart))
    (line,) = page.find("polyline")
    assert len(line["points"].split()) == 2
    assert "a<b" in page.all_text() and "a<b" not in str(chart) and "t&amp;t" in str(chart)
    assert len(parse(str(bar_chart([(1, 2.0), (2, float("inf"))], title="x"))).find("rect", **{"class": "bar"})) == 1
    assert nice_ticks(0, 1) == [0, 0.25, 0.5, 0.75, 1.0] and len(nice_ticks(1e20, 1e20)) > 1


def test_svg_is_rebuilt_with_drawing_elements_only():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" onload="x()">'
        '<script>alert(1)</script><a xlink:href="https://example.com"><text onclick="y()">hi</text></a>'
        '<foreignObject><div>html</div></foreignObject><use href="#n1"/><g fill="url(https://e.com/f)"/></svg>'
    )
    out = str(clean_svg(svg))
    assert out.startswith("<svg") and "hi" in out
    for bad in ("script", "onload", "onclick", "https://example.com", "foreignObject", "e.com/f"):
        assert bad not in out
    with pytest.raises(tg.TracegradError, match="not valid SVG"):
        clean_svg("<svg><g></svg>")
