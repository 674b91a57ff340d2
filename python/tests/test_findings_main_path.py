"""The report's depth sequence follows the activation sites of the main path (``relusv.report.findings``)."""
from relusv.report.findings import findings, on_main_path


def _depth(depth, name, correct, incorrect, spread=0.1):
    return {"depth": depth, "name": name, "layer": name.split(" ")[0], "dimension": 10,
            "gmw": {"correct": {"mean": correct, "spread": spread}, "incorrect": {"mean": incorrect, "spread": spread}},
            "effective_dimension": None, "comparison": None,
            "verdict": "correct larger" if correct > incorrect + 2 * spread else "within spread"}


def test_raw_branch_outputs_are_not_depth_steps():
    # a residual block: the raw conv2 output and the parallel downsample are not steps; the sites are
    depths = [_depth(0, "input", 1.0, 0.5), _depth(1, "conv1 (ReLU)", 2.0, 1.0),
              _depth(2, "layer1.0.conv2 (no activation)", 9.0, 8.0), _depth(3, "layer1.0.downsample.0 (no activation)",
                                                                          0.1, 0.1),
              _depth(4, "layer1.0.relu@1 (ReLU)", 3.0, 2.0), _depth(5, "fc (logits)", 0.5, 0.4)]
    assert [on_main_path(d) for d in depths] == [True, True, False, False, True, False]
    f = findings(depths, [])
    assert [r["name"] for r in f["gmw_by_layer"]] == ["conv1 (ReLU)", "layer1.0.relu@1 (ReLU)"]
    assert f["gmw_grows_with_depth"] == {"correct": True, "incorrect": True}
    depths[1]["gmw"]["correct"]["mean"] = 3.5            # a real decrease on the main path is seen
    assert findings(depths, [])["gmw_grows_with_depth"]["correct"] is False
