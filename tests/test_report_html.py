"""The report's two renderings from one data model: a well-formed, self-contained HTML page
(images embedded, labels escaped, the selected row highlighted, provenance and diagnostics) and
the Markdown with its tables. Synthetic rows and a 12-neuron untrained model; no training."""

import base64
import re
from html.parser import HTMLParser

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysnn_core.config import Config
from tinysnn_core.explore import file_digest
from tinysnn_core.modelfile import save_network
from tinysnn_core.network import Network
from tinysnn_core.report import (Row, Section, Table, accuracy_limits, plot_accuracy_vs_bits,
                                 plot_weight_maps, render, tile_shape, write_report)
from tinysnn_core.select import select

NASTY = "ptq <b>all</b> | 4b & T=100"      # a label with |, < and &
LOST = "decay factor exc.theta_decay = 0.9999999 becomes 1 in uQ1.15: its decay is lost"
BREAKDOWN = {"synaptic_events": 2.0e6, "neuron_updates_exc": 1.0e6, "stdp_updates": 0.0}


def _row(label, bits, acc, *, kind="grid", scheme="ptq", rounding="nearest", digest="d12",
         path=None, **extra):
    row = {"kind": kind, "label": label, "key": label, "scheme": scheme, "bits": bits,
           "rounding": rounding, "group_set": "mixed", "groups": {"w": bits},
           "accuracy": acc, "accuracy_integer": acc, "accuracy_float_sim": acc,
           "memory_model_bits": 8192.0 * bits, "energy_inference_pj": 1e6 * bits,
           "energy_train_pj": 5e6, "energy_breakdown_inference": BREAKDOWN,
           "memory_parameters_bits": {"weights": 8192.0 * bits, "theta": 64.0},
           "n_neurons": 12, "base_model": digest, "deployable": kind == "grid"}
    if path:
        row["base_model_path"] = path
    if kind == "grid":
        row["costs"] = {"traffic": {"label": "bytes read", "bytes_median": 100.0 * bits}}
    row.update(extra)
    return row


def _rows(model_path=None, digest="d12"):
    base = _row("float64 baseline N=12 (FP32 memory)", 32, 0.880, kind="baseline",
                scheme="none", rounding="none", digest=digest, path=model_path)
    base["energy_breakdown_inference"] = {"synaptic_events": 40e6, "neuron_updates_exc": 20e6,
                                          "stdp_updates": 0.0}
    return [base,
            _row(NASTY, 4, 0.875, digest=digest),
            _row("itq mixed 2b stochastic", 2, 0.860, scheme="itq", rounding="stochastic",
                 digest=digest, saturated={"weights": 0.01, "theta": 0.05}, lost_decays=[LOST]),
            _row("ptq mixed 8b nearest", 8, 0.879, digest=digest),
            _row("ptq mixed 2b nearest", 2, 0.120, digest=digest)]


class _Page(HTMLParser):
    """Checks nesting while it parses; collects the tables' rows, images, links and the
    provenance's terms."""
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []
        self.tables, self.imgs, self.hrefs, self.dts, self.dds = [], [], [], [], []
        self._cell = self._dt = self._dd = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if "href" in a:
            self.hrefs.append(a["href"])
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append({"class": (a.get("class") or "").split(), "cells": []})
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "dt":
            self._dt = []
        elif tag == "dd":
            self._dd = []

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th"):
            self.tables[-1][-1]["cells"].append("".join(self._cell))
            self._cell = None
        elif tag == "dt":
            self.dts.append("".join(self._dt))
            self._dt = None
        elif tag == "dd":
            self.dds.append("".join(self._dd))
            self._dd = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._dt is not None:
            self._dt.append(data)
        if self._dd is not None:
            self._dd.append(data)


def _parse(text) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    assert page.errors == [] and page.stack == [], (page.errors, page.stack)
    return page


def _md_cells(line: str) -> list[str]:
    """A Markdown table row's cells, undoing the report's escapes (backslash-char is the char,
    an unescaped pipe separates)."""
    cells, cur, i = [], [], 0
    body = line.strip()
    assert body.startswith("| ") and body.endswith(" |")
    body = body[2:-2]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            cur.append(body[i + 1])
            i += 2
        elif body.startswith(" | ", i):
            cells.append("".join(cur))
            cur, i = [], i + 3
        else:
            cur.append(body[i])
            i += 1
    return cells + ["".join(cur)]


def test_html_is_one_well_formed_file_with_the_selection_marked(tmp_path):
    rows = _rows()
    sel = select(rows, within_pp=1.0)
    assert sel.chosen["label"] == NASTY
    w = np.linspace(0, 1, 784 * 12).reshape(784, 12)
    write_report(rows, sel, tmp_path, float_w=w, chosen_w=np.round(w * 3) / 3,
                 results_path=None, command="tinysnn report r.jsonl --within 1",
                 chosen_assignments=np.r_[np.arange(11) % 10, -1])
    text = (tmp_path / "report.html").read_text()
    page = _parse(text)

    # the label is text: escaped in the source, intact in its cell
    assert "ptq &lt;b&gt;all&lt;/b&gt; | 4b &amp; T=100" in text and "<b>all</b>" not in text
    grid = next(t for t in page.tables if t[0]["cells"][:3] == ["point", "N", "accuracy (int)"])
    labels = [r["cells"][0] for r in grid[1:]]
    assert NASTY in labels
    # the selected row, and only it, carries the highlight class, in every table it is in
    holding = [t for t in page.tables if any(NASTY in r["cells"] for r in t)]
    assert len(holding) == 2                 # the grid and the cost model's table
    for t in holding:
        for r in t[1:]:
            assert ("selected" in r["class"]) == (NASTY in r["cells"]), r
    # diagnostics: shown per row, the row highlighted, the message listed
    itq = next(r for r in grid if r["cells"][0] == "itq mixed 2b stochastic")
    assert itq["cells"][-2:] == ["theta 5.0%, weights 1.0%", "1"] and "warn" in itq["class"]
    assert next(r for r in grid if r["cells"][0] == "ptq mixed 8b nearest")["cells"][-2:] == ["", ""]
    assert LOST in text and "Diagnostics: saturated" in text
    # every image embedded as a PNG data URI; no link leaves the page
    assert len(page.imgs) == 6
    for img in page.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.hrefs and all(h.startswith("#") for h in page.hrefs)
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", text)
    # the weight maps say how many neurons they show
    assert "all 12 neurons" in text and "3 x 4 tiles of their 28 x 28 input weights" in text
    assert "Class assignments of the selected model" in text

    # the Markdown: the same tables, the label's pipe escaped, the PNGs linked
    md = (tmp_path / "report.md").read_text()
    section = md.split("## Grid", 1)[1].split("\n## ", 1)[0]
    lines = [x for x in section.splitlines() if x.startswith("|")]
    assert len(lines) == 2 + 4
    assert _md_cells(lines[0])[:3] == ["point", "N", "accuracy (int)"]
    chosen = [_md_cells(x) for x in lines[2:] if "**chosen**" in x]
    assert len(chosen) == 1 and chosen[0][0] == NASTY + " **chosen**"
    assert "ptq <b>all</b> \\| 4b & T=100" in md
    assert "![weights_float.png](weights_float.png)" in md and "data:image" not in md


def test_provenance_names_the_model_data_and_command(tmp_path):
    cfg = Config.from_dict({"n_neurons": 12, "seed": 7, "train": {"time_steps": 90}})
    model = tmp_path / "float.tsnn"
    save_network(Network.build(cfg), model, metrics={"accuracy": 0.5, "n_test": 40})
    rows = _rows(str(model), file_digest(model))
    results = tmp_path / "r.jsonl"
    results.write_text("{}\n")
    write_report(rows, None, tmp_path / "rep", results_path=results,
                 command="tinysnn report r.jsonl", model_paths=[str(model)])
    page = _parse((tmp_path / "rep" / "report.html").read_text())
    assert {"data set", "N (excitatory neurons)", "T (time steps per presentation, training)",
            "topology", "training seed", "seeds in the rows (explore --seeds)",
            "base model digests (sha256, 20 digits)", "results file", "tinysnn version",
            "date", "command"} <= set(page.dts)
    models = next(t for t in page.tables if t[0]["cells"][0] == "base model")
    cells = models[1]["cells"]
    assert cells[:6] == [str(model), "mnist-5k", "12", "90", "tinysnn", "7"]
    assert cells[7:9] == ["40", "50.0"]
    assert cells[9] == f"{file_digest(model)} (matches the results: yes)"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| command | tinysnn report r.jsonl |" in md and f"| {results} (5 rows" in md
    # a model file changed since the exploration is flagged
    save_network(Network.build(cfg.with_overrides(["seed=8"])), model)
    write_report(rows, None, tmp_path / "rep2", model_paths=[str(model)])
    assert "matches the results: no: the file changed since" in (
        tmp_path / "rep2" / "report.md").read_text()


def test_accuracy_axis_zooms_to_the_data_near_the_reference():
    lo, hi = accuracy_limits([11.8, 86.0, 87.5, 88.1], [88.3])
    assert 77.0 < lo < 78.3 and 88.3 < hi < 89.5
    lo, hi = accuracy_limits([86.0, 87.5], [88.3])
    assert 85.0 < lo < 86.0                 # no lower than the data needs
    assert accuracy_limits([], []) == (0.0, 100.0)


def test_error_bars_only_where_rows_carry_an_interval(tmp_path):
    rows = _rows()
    assert plot_accuracy_vs_bits(rows, rows[:1], tmp_path / "a.png") is False
    for r in rows[1:]:
        r["accuracy_ci"] = [r["accuracy"] - 0.004, r["accuracy"] + 0.003]
        r["seeds"] = [0, 1, 2]
    assert plot_accuracy_vs_bits(rows, rows[:1], tmp_path / "b.png") is True
    write_report(rows, None, tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "error bars: its interval (accuracy_ci)" in md
    assert "| 87.5 [87.1, 87.8] (3 seeds) |" in md


def test_weight_maps_show_every_neuron(tmp_path):
    assert tile_shape(784) == (28, 28) and tile_shape(10) == (2, 5) and tile_shape(7) == (1, 7)
    cap = plot_weight_maps(np.random.default_rng(0).random((784, 37)), tmp_path / "w.png", "w")
    assert "all 37 neurons, 6 x 7 tiles" in cap          # rows x columns
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_any_label_renders_intact_in_both(tmp_path_factory, label):
    table = Table(["point", "x"], [Row([label, "1"], selected=True), Row(["other", "2"])])
    md, page = render(label, [("command", label)], Table(["base model"], []),
                      [Section("Grid", paragraphs=[label], tables=[table])],
                      tmp_path_factory.mktemp("r"))
    parsed = _parse(page)
    body = parsed.tables[1]
    assert body[1]["cells"] == [label, "1"] and "selected" in body[1]["class"]
    assert body[2]["cells"] == ["other", "2"] and body[2]["class"] == []
    lines = [x for x in md.split("## Grid", 1)[1].split("\n") if x.startswith("| ")]
    assert _md_cells(lines[1]) == [label + " **chosen**", "1"]   # after the header


def test_report_command_fills_the_provenance_and_draws_the_models(tmp_path):
    import json

    from tinysnn_core.cli import main

    net = Network.build(Config.from_dict({"n_neurons": 12, "seed": 3}))
    net.assignments = np.arange(12) % 10
    net.proportions = np.full((12, 10), 0.1)
    model = tmp_path / "m.tsnn"
    save_network(net, model)
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in _rows(str(model),
                                                                    file_digest(model))))
    out = tmp_path / "rep"
    assert main(["report", str(results), "--model", str(model), "--selected", str(model),
                 "--within", "1", "--title", "a <title> | here", "--out", str(out)]) == 0
    page = _parse((out / "report.html").read_text())
    md = (out / "report.md").read_text()
    assert f"tinysnn report {results} --model {model} --selected {model} --within 1.0" in md
    command = dict(zip(page.dts, page.dds))["command"]
    assert command.endswith(f"--out {out} --title 'a <title> | here'")
    assert page.dds.count(command) == 1
    assert {f.name for f in out.glob("*.png")} == {
        "pareto.png", "accuracy_vs_bits.png", "breakdown.png", "weights_float.png",
        "weights_selected.png", "assignments_float.png", "assignments_selected.png",
        "confusion_float.png", "raster_float.png"}
    assert len(page.imgs) == 9
    models = next(t for t in page.tables if t[0]["cells"][0] == "base model")
    assert models[1]["cells"][5] == "3"


def test_rows_combined_over_seeds_list_every_seeds_model(tmp_path):
    paths = []
    for seed in (0, 1):
        p = tmp_path / f"seed{seed}.tsnn"
        save_network(Network.build(Config.from_dict({"n_neurons": 12, "seed": seed})), p)
        paths.append(str(p))
    rows = _rows(paths[0], "seeds:0123456789")
    for r in rows:
        r.update({"base_model_paths": paths, "seeds": [0, 1]})
        r["accuracy_ci"] = [r["accuracy"] - 0.01, r["accuracy"] + 0.01]
    write_report(rows, None, tmp_path / "rep")
    page = _parse((tmp_path / "rep" / "report.html").read_text())
    pairs = dict(zip(page.dts, page.dds))
    assert pairs["training seed"] == "0, 1"
    assert pairs["seeds in the rows (explore --seeds)"] == "0, 1"
    models = next(t for t in page.tables if t[0]["cells"][0] == "base model")
    assert [r["cells"][0] for r in models[1:]] == paths
    assert [r["cells"][5] for r in models[1:]] == ["0", "1"]
    assert all(r["cells"][9].endswith("(matches the results: n/a)") and "warn" not in r["class"]
               for r in models[1:])


def test_report_views_are_the_evaluations_and_can_be_left_out(tmp_path):
    """The float model's confusion matrix counts exactly the evaluation's predictions; the
    training curve of run --curve is drawn when given; --no-model-views draws neither view."""
    import json

    from tinysnn_core import train as flow
    from tinysnn_core.cli import main
    from tinysnn_core.monitors import TrainingCurve
    from tinysnn_core.plots import confusion_matrix
    from tinysnn_core.report import report_views

    cfg = Config.from_dict({"n_neurons": 12, "seed": 3,
                            "train": {"n_train": 60, "n_test": 40, "time_steps": 40}})
    net = flow.build_network(cfg)
    data = flow.load_dataset(cfg)
    curve = TrainingCurve(window=20)
    flow.train(net, data, progress=False, callbacks=[curve])
    flow.assign(net, data, progress=False)
    accuracy = flow.evaluate(net, data, progress=False)["accuracy"]
    view = report_views(net, data)
    cm = confusion_matrix(view["labels"], view["predictions"])
    assert cm.sum() == 40 and np.trace(cm) == round(40 * accuracy)
    assert list(view["recording"].sample_ids) == [0]
    model, results = tmp_path / "m.tsnn", tmp_path / "r.jsonl"
    save_network(net, model)
    curve.save(tmp_path / "curve.json")
    results.write_text("".join(json.dumps(r) + "\n" for r in _rows(str(model),
                                                                     file_digest(model))))
    for extra, want in (([], {"confusion_float.png", "raster_float.png", "training_curve.png"}),
                        (["--no-model-views"], {"training_curve.png"})):
        out = tmp_path / f"rep{len(extra)}"
        assert main(["report", str(results), "--model", str(model), "--curve",
                     str(tmp_path / "curve.json"), "--out", str(out), *extra]) == 0
        views = {f.name for f in out.glob("*.png")} & {"confusion_float.png", "raster_float.png",
                                                     "training_curve.png"}
        assert views == want
        assert len(_parse((out / "report.html").read_text()).imgs) == len(list(out.glob("*.png")))
