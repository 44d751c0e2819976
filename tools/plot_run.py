#!/usr/bin/python3
"""plot_run: draws a run's metrics.jsonl as a PNG (train/eval loss, learning rate, grad norm, throughput,
eval accuracy/F1), several runs overlaid with one colour each.

Usage: plot_run OUTPUT_DIR [OUTPUT_DIR...] [-o FILE.png] [--title T] [--dpi N]

Rows are read as run_mlm / run_classification write them: training rows have `loss`, evaluation rows
`eval_loss`; both have `step`. A resumed run may have logged steps twice: when the steps go back, the
earlier rows at or after that step are dropped (as TensorBoard does on a restart), and of several rows
for one step the last counts. Errors in the input are one line on stderr and exit code 2.
"""
import argparse
import json
import math
import os
import sys

# Figure geometry: FIG_WIDTH x PANEL_HEIGHT inches per row of COLUMNS panels (the PNG is exactly that at --dpi).
FIG_WIDTH, PANEL_HEIGHT, COLUMNS = 12.0, 3.5, 2


class InputError(Exception):
    pass


def fail(message, code=2):
    print(f"plot_run: error: {message}", file=sys.stderr)
    sys.exit(code)


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, like every mpibert program
        fail(f"{message} (usage: plot_run OUTPUT_DIR [OUTPUT_DIR...] [-o FILE.png] [--title T] [--dpi N])")


def number(value):
    """A finite float, or None for missing/null/non-numeric/non-finite values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def read_rows(path):
    """The JSON objects of a metrics.jsonl; a cut-short last line (a crash mid-write) is skipped."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if all(not rest.strip() for rest in lines[n:]):
                print(f"plot_run: warning: {path}:{n}: skipping an incomplete last line", file=sys.stderr)
                continue
            raise InputError(f"{path}:{n}: not a JSON object ({e.msg})")
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: not a JSON object")
        if number(row.get("step")) is not None:
            rows.append(row)
    return rows


def latest_rows(rows, kind_key):
    """{step: row} of the rows holding kind_key, after restarts and repeats are resolved."""
    kept = {}
    last_step = None
    for row in rows:
        step = int(row["step"])
        if last_step is not None and step < last_step:  # a resumed run starts again at `step`
            kept = {s: r for s, r in kept.items() if s < step}
        last_step = step
        if number(row.get(kind_key)) is not None:
            kept[step] = row
    return dict(sorted(kept.items()))


def load_run(directory):
    if not os.path.isdir(directory):
        raise InputError(f"{directory}: no such directory")
    path = os.path.join(directory, "metrics.jsonl")
    if not os.path.isfile(path):
        raise InputError(f"{directory}: no metrics.jsonl (run_mlm and run_classification write OUTPUT_DIR/metrics.jsonl)")
    rows = read_rows(path)
    train, evals = latest_rows(rows, "loss"), latest_rows(rows, "eval_loss")
    if not train and not evals:
        raise InputError(f"{path}: no rows with a step and a loss or eval_loss")
    return {"train": train, "eval": evals}


def series(rows, key):
    points = [(step, number(row.get(key))) for step, row in rows.items()]
    points = [(s, v) for s, v in points if v is not None]
    return [s for s, _ in points], [v for _, v in points]


# Panels: title, y label, and the (rows kind, key, label suffix, line style) drawn in it.
PANELS = [
    ("Loss", "loss", [("train", "loss", "train", "-"), ("eval", "eval_loss", "eval", "--")]),
    ("Learning rate", "learning rate", [("train", "learning_rate", "", "-")]),
    ("Gradient norm", "grad norm", [("train", "grad_norm", "", "-")]),
    ("Throughput", "samples/s", [("train", "samples_per_second", "", "-")]),
    ("Evaluation", "accuracy / F1",
     [("eval", "eval_accuracy", "accuracy", "--"), ("eval", "eval_f1", "F1", ":")]),
]


def panels_with_data(runs):
    keep = []
    for panel in PANELS:
        if any(series(run[kind], key)[0] for run in runs.values() for kind, key, _, _ in panel[2]):
            keep.append(panel)
    return keep


def legend_names(directories):
    """Each run's directory name; the path as given where two share a name."""
    names = [os.path.basename(os.path.normpath(d)) or d for d in directories]
    return [n if names.count(n) == 1 else os.path.normpath(d) for n, d in zip(names, directories)]


def draw(runs, panels, output, title, dpi):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(panels) + COLUMNS - 1) // COLUMNS
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(FIG_WIDTH, PANEL_HEIGHT * rows), dpi=dpi, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (panel_title, ylabel, lines) in zip(axes.flat, panels):
        for i, (name, run) in enumerate(runs.items()):
            for kind, key, suffix, style in lines:
                xs, ys = series(run[kind], key)
                if xs:
                    label = f"{name} {suffix}".strip() if len(lines) > 1 else name
                    ax.plot(xs, ys, style, color=colours[i % len(colours)], label=label,
                            marker="o" if kind == "eval" else None, markersize=3)
        ax.set_title(panel_title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 5))  # 2e-4, not 0.000200
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(output, dpi=dpi)  # never bbox_inches="tight": the PNG keeps the figure's size
    plt.close(fig)


def main(argv):
    parser = Parser(prog="plot_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", metavar="OUTPUT_DIR")
    parser.add_argument("-o", "--output", help="the PNG to write (default: OUTPUT_DIR/metrics.png for one run, "
                        "runs.png in the current directory for several)")
    parser.add_argument("--title", default="", help="a title over the panels")
    parser.add_argument("--dpi", type=int, default=100, help="pixels per inch (default 100)")
    args = parser.parse_args(argv)
    if not 10 <= args.dpi <= 1000:
        fail(f"--dpi {args.dpi} is not valid (expected an integer in [10, 1000])")
    output = args.output or (os.path.join(args.dirs[0], "metrics.png") if len(args.dirs) == 1 else "runs.png")
    if not output.lower().endswith(".png"):
        fail(f"-o {output}: expected a .png file name")
    try:
        runs = dict(zip(legend_names(args.dirs), [load_run(d) for d in args.dirs]))
    except InputError as e:
        fail(str(e))
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read metrics: {e}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fail("python3-matplotlib is missing (scripts/install-deps.sh installs it)", code=1)
    try:
        draw(runs, panels_with_data(runs), output, args.title, args.dpi)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}", code=1)
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
