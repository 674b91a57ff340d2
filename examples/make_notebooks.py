"""Writes and executes the example notebooks of this directory.

    python examples/make_notebooks.py        # from the repository root

The notebooks are stored with their outputs (figures as PNG); the tests
(python/tests/test_notebooks.py) execute them again and check the outputs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

md = nbformat.v4.new_markdown_cell
code = nbformat.v4.new_code_cell

NOTEBOOKS = {
    "monitor_training.ipynb": [
        md("# Monitoring a training run\n\n"
           "`relusv.torch.Monitor` measures, per layer and at every epoch, the Gaussian mean width (GMW) "
           "of the correctly and the incorrectly classified points of a probe set (equal-size subsets), "
           "and the singular values of the weights. Here: a small MLP trained on scikit-learn's digits, "
           "probed on the held-out digits."),
        code("import relusv.plot\nimport relusv.torch as rt\nimport torch\n"
             "from relusv.datasets import load_digits\nfrom torch import nn\n\n"
             "torch.manual_seed(0)\ntorch.set_num_threads(1)\n"
             "x_train, y_train = (torch.from_numpy(a) for a in load_digits(\"train\"))\n"
             "x_probe, y_probe = load_digits(\"test\")\n"
             "model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))\n"
             "loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), "
             "batch_size=32, shuffle=True)\n"
             "optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)"),
        code("monitor = rt.Monitor(model, x_probe, y_probe, every_epochs=1, relu_bounds=True, relu_ks=(0, 2, 4),\n"
             "                     relu_options={\"max_steps\": 20})\n"
             "for _epoch in range(4):\n"
             "    for xb, yb in loader:\n"
             "        optimizer.zero_grad()\n"
             "        nn.functional.cross_entropy(model(xb), yb).backward()\n"
             "        optimizer.step()\n"
             "    monitor.epoch_end()\n"
             "monitor"),
        md("The history is a table of flat records (one value each), ready for pandas:"),
        code("history = monitor.history.to_pandas()\n"
             "history[history.quantity == \"gmw\"].groupby([\"epoch\", \"group\"]).value.mean().unstack()"),
        md("Widths per layer over training: correctly classified points solid, incorrectly classified "
           "dashed, the band is the spread over the subsets."),
        code("relusv.plot.gmw(monitor)"),
        md("The last measurement's spectra: the linear singular values of each weight (grey) and the "
           "certified ReLU bounds over both groups."),
        code("relusv.plot.spectra(monitor, log=True)"),
    ],
    "analyze_cnn.ipynb": [
        md("# Analysing a CNN\n\n"
           "`relusv.torch.analyze` finds the layers of any model (tracing; BatchNorm folded), and gives one "
           "row per layer. The example is the digits CNN that ships with relusv."),
        code("import relusv\nimport relusv.plot\nimport relusv.torch as rt\nimport torch\n"
             "from relusv.datasets import load_digits_cnn\n\n"
             "torch.set_num_threads(1)\n"
             "cnn, images, labels = load_digits_cnn()\ncnn"),
        code("table = rt.analyze(cnn, images[:300], labels[:300], relu_bounds=False, repeats=3)\n"
             "table[[\"layer\", \"kind\", \"folded\", \"matrix_shape\", \"rank\", \"sigma_0\", \"operator_norm\",\n"
             "       \"operator_norm_method\", \"gmw_correct\", \"gmw_incorrect\", \"gmw_verdict\"]]"),
        code("relusv.plot.analysis(table)"),
        md("Channel-rank ReLU singular values of the second convolution (BatchNorm folded) over the images "
           "that reach it: certified bounds, each the exact maximum error of a returned convolution of "
           "channel rank `k`."),
        code("x = cnn[:2](torch.from_numpy(images[:100])).detach()\n"
             "r = rt.relu_singular_values(cnn[2], x, ks=[0, 2, 4, 8, 16], bn=cnn[3], max_steps=40)\n"
             "relusv.plot.relu_spectrum(r)"),
        md("The spectrum of the convolution as an operator on 8 x 8 images (circular padding, stride 1):"),
        code("sigma = relusv.conv_singular_values(cnn[0].weight, (8, 8))\nsigma[:5], sigma.shape"),
    ],
    "analyze_resnet.ipynb": [
        md("# A torchvision ResNet-18\n\n"
           "`relusv.torch.analyze` on a network relusv did not define: torchvision's ResNet-18 (the definition "
           "only, nothing downloaded), trained for a few seconds on the digits, upscaled to 3 x 16 x 16 "
           "images. Every ReLU of the network gets a row. The ReLU after a block's `conv1` (and its "
           "BatchNorm) is analysed in `conv1`'s row; the ReLU after each residual sum in an *activation "
           "site* row, `layerX.Y.relu@1`, as one affine map of the stacked inputs of its branches "
           "(`bn2(conv2(h)) + x`, or the downsample's `bn(conv(x))` in place of `x`; MATH.md section 10). "
           "`conv2` and `downsample.0` keep rows of their own for their spectra and widths."),
        code("import relusv.plot\nimport relusv.torch as rt\nimport torch\nimport torchvision\n"
             "from relusv.datasets import load_digits\nfrom torch import nn\n\n"
             "torch.manual_seed(0)\ntorch.set_num_threads(1)\n\n\n"
             "def images(x):   # the 8 x 8 digits as 3 x 16 x 16 images\n"
             "    x = torch.as_tensor(x).reshape(-1, 1, 8, 8)\n"
             "    return nn.functional.interpolate(x, scale_factor=2).expand(-1, 3, -1, -1).contiguous()\n\n\n"
             "x_train, y_train = load_digits(\"train\")\nx_probe, y_probe = load_digits(\"test\")\n"
             "x_train, x_probe, y_train = images(x_train), images(x_probe[:600]), torch.as_tensor(y_train)\n"
             "y_probe = y_probe[:600]\n"
             "model = torchvision.models.resnet18(num_classes=10)\n"
             "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
             "loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), batch_size=64,\n"
             "                                     shuffle=True)\n"
             "for _epoch in range(3):\n"
             "    for xb, yb in loader:\n"
             "        optimizer.zero_grad()\n"
             "        nn.functional.cross_entropy(model(xb), yb).backward()\n"
             "        optimizer.step()\n"
             "model.eval()"),
        code("table = rt.analyze(model, x_probe, y_probe)\n"
             "print(f\"accuracy {table.attrs['accuracy']:.1%}: {table.attrs['correct']} correct, \"\n"
             "      f\"{table.attrs['incorrect']} incorrect probe points; {table.attrs['family']} comparisons\")\n"
             "table[[\"layer\", \"module\", \"rank\", \"sigma_0\", \"operator_norm\", \"gmw_correct\", \"gmw_incorrect\",\n"
             "       \"gmw_verdict\", \"relu_k10_correct\", \"relu_bounds\"]]"),
        md("How to read the table:\n\n"
           "- `sigma_0`, `rank`: the spectrum of the kernel matrix `K.reshape(C_out, -1)` (for a site, of the "
           "joint matrix of its branches); `operator_norm`: a certified upper bound of the norm of the layer's "
           "map on its actual `H x W` input, exact where `operator_norm_method` says so. On small images the "
           "zero padding makes it differ from `sigma_0`.\n"
           "- `gmw_correct`, `gmw_incorrect`: the Gaussian mean width of equal-size sets of correctly and "
           "incorrectly classified points after the activation; `gmw_verdict` is the calibrated comparison "
           "(permutation test, Holm over every comparison of the table): a verdict only where the adjusted "
           "p-value is below `alpha`, otherwise `no difference shown`.\n"
           "- `relu_k10_correct`: the smallest computed rank `k` whose certified bound of the ReLU singular "
           "value `s_k` is at most a tenth of `s_0`, over the correctly classified points."),
        md("An activation site names its branches in `notes`:"),
        code("site = table.set_index(\"layer\").loc[\"layer2.0.relu@1\"]\n"
             "print(site[\"notes\"])\nprint(site[\"operator_norm_method\"])"),
        md("Widths through the layers (correct solid, incorrect dashed):"),
        code("relusv.plot.analysis(table)"),
        md("The site's certified bound curve over each group's points (`df.attrs[\"details\"]`); from "
           "`zero_from` on, `s_k = 0` exactly (the rank of the pre-activations):"),
        code("curves = table.attrs[\"details\"][\"layer2.0.relu@1\"][\"relu_bounds\"]\n"
             "{group: {\"k\": c[\"ks\"], \"bound\": [round(b, 3) for b in c[\"bound\"]], "
             "\"source\": c[\"source\"], \"zero_from\": c[\"zero_from\"]}\n"
             " for group, c in curves.items()}"),
    ],
    "harmonic_pruning.ipynb": [
        md("# Harmonic pruning\n\n"
           "`relusv.torch.harmonic_prune` runs the paper's algorithm: the hidden layers become double layers, "
           "each cut removes the least useful singular directions of one layer (chosen on a quarter of the "
           "validation data), the network retrains briefly, and the cut is kept while the accuracy on the other "
           "three quarters stays within 1 pt of the start. Here: "
           "the digits MLP that ships with relusv (64-100-100-100-10)."),
        code("import relusv.plot\nimport relusv.torch as rt\nimport torch\n"
             "from relusv.datasets import load_digits, load_digits_mlp\n\n"
             "torch.manual_seed(0)\ntorch.set_num_threads(1)\n"
             "model, x, y = load_digits_mlp()\n"
             "x_val, y_val, x_test, y_test = x[:600], y[:600], x[600:], y[600:]\n"
             "x_train, y_train = (torch.from_numpy(a) for a in load_digits(\"train\"))\n"
             "train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), "
             "batch_size=32, shuffle=True)"),
        code("result = rt.harmonic_prune(model, x_val, y_val, retrain=train, retrain_batches=20,\n"
             "                          max_iterations=12, test_data=(x_test, y_test))\n"
             "first, last = result.history[0], result.history[-1]\n"
             "print(result.stop_reason, first[\"ranks\"], \"->\", last[\"ranks\"])\n"
             "print(result.guarantee())"),
        code("relusv.plot.pruning(result)"),
    ],
    "gmw_c_and_python.ipynb": [
        md("# The Gaussian mean width from C and from Python\n\n"
           "The same library answers both: a small C program linked against `libReluSVKit.so` through "
           "`relusv.h`, and `relusv.gmw`, on the vertices of the cube `{-1, 1}^6` (exact width "
           "`2 n sqrt(2 / pi)`) with the same directions (seed 7)."),
        code("import subprocess\nimport tempfile\nfrom pathlib import Path\n\n"
             "import numpy as np\nimport relusv\nfrom relusv import _native\n\n"
             "HEADER_DIR = Path(\"..\", \"Sources\", \"CReluSV\", \"include\").resolve()\n"
             "LIBRARY = _native.library_path().resolve()\nLIBRARY.name"),
        code("C_PROGRAM = r'''\n"
             "#include <stdio.h>\n#include \"relusv.h\"\n\n"
             "int main(void) {\n"
             "    enum { N = 6, POINTS = 1 << N };\n"
             "    double cube[POINTS * N];\n"
             "    for (int i = 0; i < POINTS; ++i)\n"
             "        for (int j = 0; j < N; ++j) cube[i * N + j] = (i >> j & 1) ? 1.0 : -1.0;\n"
             "    relusv_matrix x = {cube, RELUSV_FLOAT64, POINTS, N, 0};\n"
             "    relusv_width_result r;\n"
             "    if (relusv_gmw(&x, 2000, 7, 0.0, 0, NULL, &r, NULL, NULL) != RELUSV_OK) {\n"
             "        fprintf(stderr, \"relusv: %s\\n\", relusv_last_error());\n"
             "        return 1;\n"
             "    }\n"
             "    printf(\"%.17g %.17g\\n\", r.estimate, r.std_error);\n"
             "    return 0;\n"
             "}\n'''\n\n"
             "build = Path(tempfile.mkdtemp())\n"
             "(build / \"gmw.c\").write_text(C_PROGRAM)\n"
             "subprocess.run([\"cc\", \"-std=c11\", \"-Wall\", \"-o\", str(build / \"gmw\"), str(build / \"gmw.c\"),\n"
             "                f\"-I{HEADER_DIR}\", f\"-L{LIBRARY.parent}\", f\"-l:{LIBRARY.name}\", \"-lm\",\n"
             "                f\"-Wl,-rpath,{LIBRARY.parent}\"], check=True)\n"
             "c_estimate, c_std_error = map(float, subprocess.run([str(build / \"gmw\")], check=True, "
             "capture_output=True,\n                                                        text=True).stdout.split())\n"
             "c_estimate, c_std_error"),
        code("cube = np.array([[1.0 if i >> j & 1 else -1.0 for j in range(6)] for i in range(64)])\n"
             "r = relusv.gmw(cube, samples=2000, seed=7, trim=0.0, return_details=True)\n"
             "exact = 2 * 6 * np.sqrt(2 / np.pi)\n"
             "print(f\"C: {c_estimate:.6f}   Python: {r.estimate:.6f}   exact: {exact:.6f}   "
             "(standard error {r.std_error:.3f})\")\n"
             "assert c_estimate == r.estimate"),
        md("Both calls drew the same 2,000 directions from seed 7, so they agree to the last bit; both are "
           "within a few standard errors of the exact value."),
    ],
}


def execute(nb, timeout: int = 300):
    """Runs ``nb`` in a fresh kernel with the examples directory as working directory."""
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def main(names) -> None:
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = nbformat.v4.new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        execute(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main(sys.argv[1:])
