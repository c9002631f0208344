"""The benchmark's report: the medians of repeated runs, and the table of figures ``scripts/benchmark.py`` prints
(its own module so that the harness reads as what it measures)."""

from __future__ import annotations

import statistics


def median_results(runs: list[dict]) -> dict:
    """One result whose figures are the medians of ``runs``' (BLEU and FLOPs do not vary between runs)."""
    merged = dict(runs[0])
    for key in ("translate_sent_s", "translate_pieces_s"):
        merged[key] = {name: statistics.median(run[key][name] for run in runs) for name in runs[0][key]}
    merged["gemm_gflops"] = statistics.median(run["gemm_gflops"] for run in runs)
    merged["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    return merged


def train_note(name: str, results: dict) -> str:
    """What a training figure is compared with: the roofline, and its reference variant."""
    speeds = results["train_tok_s"]
    note = f"{results['roofline_pct'][name]:.1f}% of roofline"
    if name == "input_feeding_step_loop":
        note += f"; the fused loop is {speeds['input_feeding'] / speeds[name]:.2f}x faster"
    elif name.endswith("_bf16"):
        note += f", {speeds[name] / speeds[name.removesuffix('_bf16')]:.2f}x fp32"
    return note


def report(results: dict) -> str:
    lines = [f"{'figure':34} {'value':>12}  note", "-" * 70]
    if "train_tok_s" in results:
        flops = results["model_flops_per_token"]
        lines += [f"{'gemm_gflops (fp32 roofline)':34} {results['gemm_gflops']:12.1f}",
                  f"{'train MFLOP/token, parallel':34} {flops['parallel'] / 1e6:12.1f}  forward + backward",
                  f"{'train MFLOP/token, input feeding':34} {flops['input_feeding'] / 1e6:12.1f}"]
        for name, value in results["train_tok_s"].items():
            lines.append(f"{'train tok/s ' + name:34} {value:12.0f}  {train_note(name, results)}")
    sentences = results.get("translate_sent_s", {})
    for name, value in sentences.items():
        fp32 = sentences.get(name.replace("int8", "fp32").replace("bf16", "fp32").replace("_shortlist", ""))
        note = f"BLEU {results['bleu'][name]:.2f}" + (f", {value / fp32:.2f}x fp32" if fp32 else "")
        lines.append(f"{'translate sent/s ' + name:34} {value:12.1f}  {note}")
    for name, value in results["peak_rss_mb"].items():
        lines.append(f"{'peak RSS MB ' + name:34} {value:12.0f}")
    if "translate" in results:
        lines += ["", translation_table(results["translate"], results.get("baseline"))]
    return "\n".join(lines)


def translation_table(this: dict, baseline: dict | None) -> str:
    """Per search: sentences/s, target pieces/s, MFLOP per sentence, % of the fp32 roofline (measured in turns
    with the search), BLEU; and this checkout against the baseline commit, run in turns."""
    flops = this.get("translate_mflop_per_sentence", {})
    rows = [("this", this)] + ([("baseline", baseline)] if baseline else [])
    lines = [f"{'search':22} {'code':9} {'sent/s':>8} {'pieces/s':>9} {'MFLOP/sent':>10} {'% roofline':>10} "
             f"{'BLEU':>6} {'x baseline':>10}", "-" * 92]
    for name in this["translate_sent_s"]:
        for label, result in rows:
            if name not in result["translate_sent_s"]:
                continue  # a search the baseline's package cannot run
            speed = result["translate_sent_s"][name]
            mflop = flops.get(name)  # the same searches: this checkout's count serves both
            roofline = f"{100 * speed * mflop * 1e6 / (result['gemm_gflops'] * 1e9):.1f}" if mflop else "-"
            ratio = (f"{speed / baseline['translate_sent_s'][name]:.2f}"
                     if baseline and name in baseline["translate_sent_s"] else "-")
            lines.append(f"{name:22} {label:9} {speed:8.1f} {result['translate_pieces_s'][name]:9.0f} "
                         f"{mflop or 0:10.1f} {roofline:>10} {result['bleu'][name]:6.2f} {ratio:>10}")
    return "\n".join(lines)
