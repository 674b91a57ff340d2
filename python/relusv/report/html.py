"""``index.html``: one static page (inline CSS, no scripts, figures as PNG files next to it).

Opens from the file system in any browser; no server, no network access.
"""
from __future__ import annotations

from html import escape
from typing import List, Optional

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 1150px; color: #222;
       line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
  border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; font-size: 0.86em; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.55em; text-align: right; }
th { background: #f2f4f7; } td.name, th.name { text-align: left; }
.meta { color: #555; font-size: 0.92em; } .note { color: #555; font-size: 0.9em; max-width: 60em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.yes { color: #176b2c; } .no { color: #a11; } code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _num(v, digits: int = 4) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{digits}g}"


def _pm(summary: Optional[dict], digits: int = 4) -> str:
    if summary is None:
        return "&ndash;"
    return f"{summary['mean']:.{digits}g} &plusmn; {summary['spread']:.2g}"


def _yes_no(flag) -> str:
    if flag is None:
        return "&ndash;"
    return f"<span class='{'yes' if flag else 'no'}'>{'yes' if flag else 'no'}</span>"


def _summary_table(report: dict) -> str:
    depths = {d["depth"]: d for d in report["depths"]}
    head = ("<tr><th class='name'>layer</th><th>kind, activation</th><th>shape (out&times;in)</th><th>rank</th>"
            "<th>parameters</th><th>top linear &sigma;<sub>0</sub>, &sigma;<sub>1</sub>, &sigma;<sub>2</sub></th>"
            "<th>&sigma;<sub>min</sub></th><th>stable rank</th><th>operator norm</th>"
            "<th>s<sub>0</sub> correct (exact)</th><th>s<sub>0</sub> incorrect (exact)</th>"
            "<th>ReLU s<sub>0</sub> over the sphere sample</th>"
            "<th>median bound / (&sigma;<sub>k</sub> radius) correct / incorrect</th>"
            "<th>GMW correct</th><th>GMW incorrect</th><th>comparison (Holm-adjusted p, effect interval)</th>"
            "<th>eff. dim. correct</th><th>eff. dim. incorrect</th></tr>")
    rows = []
    d0 = depths.get(0)
    if d0 is not None:
        rows.append("<tr><td class='name'>input</td><td>&ndash;</td><td>" + str(d0["dimension"]) + "</td>"
                    + "<td>&ndash;</td>" * 10 + "".join(_gmw_cells(d0)) + "</tr>")
    ratio = {(r["layer"], r["group"]): r for r in report["findings"]["relu_bounds"]}
    for layer in report["layers"]:
        s = layer["singular_values"]
        top = ", ".join(f"{v:.3g}" for v in s[:3])
        bounds = layer["relu_bounds"]
        exact = layer["top_bound"]
        sphere = bounds["unit_sphere"]["bound"][0] if bounds["unit_sphere"] is not None else None
        med = "/".join(_num(ratio[(layer["index"], g)]["ratio_to_scaled_sigma_median"], 3)
                       if (layer["index"], g) in ratio else "&ndash;" for g in ("correct", "incorrect"))
        kind = f"{layer['kind']}, {layer['activation']}" + (f", {escape(layer['folded'])} folded" if layer["folded"]
                                                             else "")
        cells = [f"<td class='name'>{escape(layer['name'])}{' (double)' if layer['double'] else ''}</td>",
                 f"<td class='name'>{kind}</td>",
                 f"<td>{layer['shape'][0]}&times;{layer['shape'][1]}</td>", f"<td>{layer['rank']}</td>",
                 f"<td>{_num(layer['parameters'])}</td>", f"<td>{top}</td>", f"<td>{_num(s[-1], 3)}</td>",
                 f"<td>{_num(layer['stable_rank'], 3)}</td>", _operator_norm_cell(layer),
                 f"<td>{_pm(exact['correct']) if exact else '&ndash;'}</td>",
                 f"<td>{_pm(exact['incorrect']) if exact else '&ndash;'}</td>", f"<td>{_num(sphere)}</td>",
                 f"<td>{med}</td>"]
        cells += _gmw_cells(depths.get(layer["index"] + 1))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table id='summary'>{head}{''.join(rows)}</table>"


def _operator_norm_cell(layer: dict) -> str:
    """The operator norm and how it was obtained (exact, or the certified upper end of a bracket and its gap)."""
    value = layer["operator_norm"]
    if value is None:
        return f"<td title='{escape(layer['operator_norm_method'])}'>&ndash;</td>"
    return f"<td>{_num(value, 3)} <span class='note'>{escape(layer['operator_norm_method'])}</span></td>"


def _layers_found(report: dict) -> str:
    """Every discovered layer with what was folded or skipped, and the modules left out."""
    m = report["model"]
    d = m["discovery"]
    how = {"trace": "traced with torch.fx", "registration order":
           "found by registration order (the model does not trace with torch.fx: "
           f"{escape(d['trace_error'] or '')})", "names": "named by the user",
           "numpy chain": "read as a chain of linear layers and ReLUs (NumPy forward pass; torch is not installed)"
           }.get(d["method"], d["method"])
    items = [f"<li><code>{escape(l['name'])}</code>: {escape(l['module'])} ({l['kind']}), activation "
             f"{escape(l['activation'])}{'; BatchNorm ' + escape(l['folded']) + ' folded (eval mode)' if l['folded'] else ''}"
             f"{'; ' + escape(l['notes']) if l['notes'] else ''}</li>" for l in m["layers"]]
    items += [f"<li><code>{escape(name)}</code>: skipped ({escape(reason)})</li>" for name, reason in d["skipped"].items()]
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in m["notes"])
    return f"<p class='note'>Layers {how}; names are qualified module names.</p><ul>{''.join(items)}</ul>{notes}"


def ratio_text(a: float, b: float) -> str:
    """``a / b`` to three decimals; ``n/a`` where ``b`` is 0 (a width of constant points)."""
    return f"{a / b:.3f}" if b else "n/a"


def _gmw_cells(depth: Optional[dict]) -> List[str]:
    if depth is None or depth["gmw"] is None:
        return ["<td>&ndash;</td>"] * 5
    c = depth["comparison"]
    if c is None:
        compared = "&ndash;"
    elif any(c[key] is None for key in ("effect", "effect_low", "effect_high")):   # zero or overflowing widths
        compared = f"{escape(depth['verdict'])}<br>p<sub>adj</sub> = {c['p_adjusted']:.3g}, relative effect undefined"
    else:
        compared = (f"{escape(depth['verdict'])}<br>p<sub>adj</sub> = {c['p_adjusted']:.3g}, "
                    f"effect {100 * c['effect']:+.1f}% [{100 * c['effect_low']:+.1f}%, {100 * c['effect_high']:+.1f}%]")
    return [f"<td>{_pm(depth['gmw']['correct'])}</td>", f"<td>{_pm(depth['gmw']['incorrect'])}</td>",
            f"<td>{compared}</td>", f"<td>{_pm(depth['effective_dimension']['correct'], 3)}</td>",
            f"<td>{_pm(depth['effective_dimension']['incorrect'], 3)}</td>"]


def _findings_section(report: dict) -> str:
    f = report["findings"]
    if not f["gmw_by_layer"]:
        return (f"<p class='note'>The groups are not compared: {escape(report['data']['comparison'])} "
                "(too few correctly or incorrectly classified points; at least 2 of each are needed).</p>")
    rows = "".join(
        f"<tr><td class='name'>{escape(r['name'])}</td><td>{r['correct_mean']:.4g} &plusmn; {r['correct_spread']:.2g}"
        f"</td><td>{r['incorrect_mean']:.4g} &plusmn; {r['incorrect_spread']:.2g}</td>"
        f"<td>{ratio_text(r['correct_mean'], r['incorrect_mean'])}</td><td>{escape(r['statement'])}</td>"
        f"<td>{_verdict(r['verdict'])}</td></tr>" for r in f["gmw_by_layer"])
    grows = f["gmw_grows_with_depth"]
    items = [f"GMW larger for correctly classified points at every hidden layer (Holm-adjusted p &lt; "
             f"{report['settings']['alpha']:g}): "
             f"{_yes_no(f['gmw_correct_larger_all_layers'])}",
             f"GMW grows with depth (input, then each activation site along the main path; every step larger than "
             f"the spreads): "
             f"correct {_yes_no(grows['correct'])}, incorrect {_yes_no(grows['incorrect'])}"]
    sphere = [r for r in f["relu_bounds"] if r["group"] == "unit_sphere"]
    on_data = [r for r in f["relu_bounds"] if r["group"] != "unit_sphere"]
    if sphere:
        worst = max(r["ratio_to_scaled_sigma_max"] or 0 for r in sphere)
        median = ", ".join(f"{escape(r['name'])} {r['ratio_to_scaled_sigma_median']:.2f}" for r in sphere)
        items.append(f"Over a sample of {report['settings']['sphere_points']} points of the unit sphere and the &plusmn;v<sub>j</sub> of W (b = 0; the bounds hold over these points, not the whole ball), "
                     f"ReLU bounds below the linear singular values at every computed k: "
                     f"{_yes_no(all(r['below_sigma'] for r in sphere))} (largest bound<sub>k</sub> / "
                     f"&sigma;<sub>k</sub> {worst:.3f}; median {median})")
    if on_data:
        worst = max(r["ratio_to_scaled_sigma_max"] or 0 for r in on_data)
        items.append(f"Over the data, ReLU bounds below &sigma;<sub>k</sub> &times; radius (guaranteed by "
                     f"MATH.md &sect;2; largest ratio {worst:.3f}): {_yes_no(worst <= 1 + 1e-9)}; below "
                     f"&sigma;<sub>k</sub> itself: {_yes_no(all(r['below_sigma'] for r in on_data))}")
    top = f["top_bound_correct_larger"]
    if top:
        items.append("Top ReLU singular value s<sub>0</sub> (exact, on every repeat's sets) larger for correctly "
                     "classified points: " + ", ".join(
                         f"{escape(t['name'])}: {escape(t['statement'])}"
                         for t in top))
    if not on_data:
        items.append("ReLU singular-value bounds over the data: not computed (too few points in one of the groups).")
    return ("<table id='findings'><tr><th class='name'>hidden layer output</th><th>GMW correct</th>"
            "<th>GMW incorrect</th><th>ratio</th><th>comparison (MATH.md &sect;11)</th>"
            "<th>correct larger</th></tr>"
            f"{rows}</table><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def _verdict(verdict: str) -> str:
    """``yes`` only for ``correct larger`` (adjusted p below alpha); ``no`` for the reverse; else as stated."""
    if verdict == "correct larger":
        return "<span class='yes'>yes</span>"
    if verdict == "incorrect larger":
        return "<span class='no'>no (reversed)</span>"
    return escape(verdict)


def _pruning_section(report: dict, key: str = "pruning") -> str:
    p = report[key]
    if p is None and key == "pruning_retrained":
        return ("<p class='note'>With retraining: not run (needs torch and training data: "
                "<code>--retrain</code>, with <code>--train-data</code> for your own model).</p>")
    if p is None:
        return (f"<p class='note'>One-shot pruning: {escape(report['model']['pruning'])}. No hidden layers to prune, "
                "or too few points, when it says it ran.</p>")
    c = p["chosen"]
    ranks = "".join(f"<tr><td class='name'>{escape(name)}</td><td>{shape[0]}&times;{shape[1]}</td><td>{r0}</td>"
                    f"<td>{r}</td></tr>"
                    for name, shape, r0, r in zip(p["names"], p["shapes"], p["initial_ranks"], c["ranks"]))
    saved = 1 - c["parameters"] / p["parameters_before"]
    extra = ""
    if p["retrained"]:
        r = p["retraining"]
        extra = (f" Retraining: {r['batches']} Adam steps (batches of {r['batch_size']}, learning rate "
                 f"{r['learning_rate']:g}) on the {p['training_points']} training points "
                 f"{escape(r['criterion'])}; stopped by: {escape(p['stop_reason'])}.")
    return (f"<p>Method: <b>{escape(p['method'])}</b> ({'with' if p['retrained'] else 'no'} retraining).{extra} "
            f"Three seeded disjoint sets: the cuts are chosen on {p['selection_points']} points, kept while the "
            f"accuracy on {p['stopping_points']} other points stays within {100 * p['tolerance']:g} percentage "
            f"point(s) of the start, and {p['evaluation_points']} points are only measured. Parameters count each "
            f"layer in the cheaper of its factored (r(m+n)+m) and dense (mn+m) form (relusv.params).</p>"
            f"<table id='{key}'><tr><th class='name'>hidden layer</th><th>shape</th><th>rank before</th>"
            f"<th>smallest rank kept</th></tr>{ranks}</table>"
            f"<p>Parameters: {p['parameters_before']:,} before, {c['parameters']:,} after "
            f"({100 * saved:.1f}% fewer). Result: {escape(p['guarantee'])}.</p>")


def render(report: dict) -> str:
    d, m, s = report["data"], report["model"], report["settings"]
    figures = report["files"]["figures"]
    fig_html = {k: (f"<img src='{escape(v)}' alt='{escape(k)}'>" if v else "") for k, v in figures.items()}
    spectra_note = ("ReLU bounds are computed at every k" if s["spectrum_points"] is None
                    else f"ReLU bounds at {s['spectrum_points']} evenly spaced k")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>relusv report</title><style>{CSS}</style></head>
<body>
<h1>relusv report</h1>
<p class="meta">Model: {escape(m['source'])} ({len(m['layers'])} layers, {m['parameters']:,} parameters).
Data: {escape(d['source'])} ({d['points']} points, {d['dimension']} features, {d['classes']} classes).
Accuracy {100 * d['accuracy']:.2f}%: {d['correct']} correctly and {d['incorrect']} incorrectly classified.
Seed {s['seed']}{', quick settings' if s['quick'] else ''}; relusv {escape(report['relusv_version'])};
{report['elapsed_seconds']:.1f} s.</p>

<h2>Layers</h2>
{_layers_found(report)}

<h2>Summary per layer</h2>
<p class="note">Groups are compared on sets of equal size ({d['group_size']} points each; the larger group is
subsampled; each group capped at {s['max_group_size']} points), {s['repeats']} times with fresh subsets on the same
Gaussian directions; entries are mean &plusmn; standard deviation over the repeats. Each comparison (MATH.md
&sect;11) is a permutation test ({s['permutations']} random relabellings of the pooled points) of the mean paired
difference D, Holm-adjusted over every comparison of the report; the verdict is "correct larger" or "incorrect
larger" only where the adjusted p is below {s['alpha']:g}, else "no difference shown"; the effect D / mean(GMW) is
given with its interval at level {100 * (1 - s['alpha']):.0f}% ({"the spread of the permutation distribution" if not s['bootstrap'] else f"{s['bootstrap']} bootstrap resamples of the points"}). GMW: Gaussian mean width of the layer's outputs ({s['gmw_samples']} directions,
{100 * s['gmw_trim']:g}% trimmed mean). ReLU bounds: certified upper bounds of the ReLU singular values
s<sub>k</sub>(ReLU(W&middot;+b); X) over the layer's inputs X from each group (first subset), computed at
ranks k below the data rank only: from there on s<sub>k</sub> = 0 exactly (MATH.md &sect;2 and &sect;9). For a
linear layer the data rank is rank(X W<sup>T</sup>), at most {d['group_size']} for a set of {d['group_size']} points;
for a convolution or a layer applied per token it is the rank of the pre-activations of all patches (each point
contributes one row per output position, so it can exceed the number of points). Rows named by an activation site
(a residual sum) analyse the joint map of the stacked branch inputs (MATH.md &sect;10); clipped activations
(ReLU6) are evaluated with their own definition. s<sub>0</sub> is exact and given as mean &plusmn;
spread over every repeat's sets (compared the same way); the radius is max&#8214;x&#8214; over the set.</p>
{_summary_table(report)}

<h2>The paper's observations on this network</h2>
{_findings_section(report)}

<h2>Spectra</h2>
<p class="note">Grey: linear singular values of W. Blue solid / red dashed: ReLU singular-value bounds over the
correctly / incorrectly classified set, divided by the set's radius, drawn up to the set's data rank; a square
marks the first k where s<sub>k</sub> = 0 exactly. The chain
s<sub>k</sub>(&phi;; X) &le; &sigma;<sub>k</sub> max&#8214;x&#8214; reads bound / radius &le; &sigma;<sub>k</sub>.
Green dotted: ReLU bounds over a sample of the unit sphere (b = 0); over the whole ball Lemma 5 gives
s<sub>k</sub> &le; &sigma;<sub>k</sub>, and the sample only estimates s<sub>0</sub> from below.
{spectra_note}.</p>
{fig_html.get('spectra', '')}

<h2>Gaussian mean width by depth</h2>
{fig_html.get('gmw', '') or "<p class='note'>Not computed: too few points in one of the groups.</p>"}

<h2>Harmonic pruning</h2>
{_pruning_section(report)}
{fig_html.get('pruning', '')}
{_pruning_section(report, "pruning_retrained")}
{fig_html.get('pruning_retrained', '')}

<h2>Files</h2>
<p class="note"><code>report.json</code> (schema: <code>schema.json</code>), CSV tables:
{', '.join(f"<a href='{escape(f)}'>{escape(f)}</a>" for f in report['files']['csv'])}.</p>
</body></html>
"""
