#!/usr/bin/env python3
"""PyTorch's side of compare.sh: the work of dev.kiln.benchmarks.Compare, done in PyTorch.

The four keypoint presets are written out below layer by layer, with the same shapes as
ModelPresets.java in kiln's keypoints module. The training step and the inference batch, the
warm-up and the timed repeats match KeypointWorkload.java and Compare.java, and the output uses
the same tab-separated records (see Compare.java). Written for Debian 12's python3-torch 1.13 and
python3-numpy 1.24 with OpenBLAS; it uses no API newer than those.

Usage: pytorch_bench.py {check,describe,run,gemm,rss} [options]; run with -h for the options.
On the CPU, every command but describe exits with status 4 where NumPy's or PyTorch's BLAS is not
OpenBLAS (or MKL built into PyTorch), because the comparison would then time other code.
With --device cuda (the first GPU) or cuda:N, run and rss put the model and the batch on that GPU
and end each timed repeat with torch.cuda.synchronize(); benchmarks/gpu-check/gpu-check.sh uses
this for its PyTorch column.
On the GPU they turn TF32 off for cuDNN and for matrix products, and cuDNN's benchmark mode off,
to match kiln, which asks cuDNN for FMA math (no TF32), uses cuBLAS's default math and picks cuDNN
algorithms by heuristic instead of by timing them.
"""

import argparse
import ctypes
import decimal
import faulthandler
import os
import platform
import re
import signal
import sys
import time

SIDE = "pytorch"
INSTALL_HINT = "apt-get install python3-torch python3-torchvision libopenblas0-openmp"
MODELS = ["default", "naimishnet", "lenet-20m", "lenet-48m"]
# Input shape of one image, [channels, height, width], per preset.
INPUT_SHAPES = {
    "default": (1, 96, 96),
    "naimishnet": (1, 96, 96),
    "lenet-20m": (1, 224, 224),
    "lenet-48m": (1, 224, 224),
}
OUTPUTS = 136


def build_model(nn, name):
    """Build a preset as an nn.Sequential with one child per layer line of kiln's preset."""
    if name == "default":
        layers = []
        channels = 1
        for out in (16, 32, 64, 128, 256):
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels = out
        layers += [
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(256 * 3 * 3, 256),
            nn.ReLU(),
            nn.Linear(256, OUTPUTS),
        ]
    elif name == "naimishnet":
        layers = []
        channels = 1
        for out, kernel, p in ((32, 4, 0.1), (64, 3, 0.2), (128, 2, 0.3), (256, 1, 0.4)):
            layers += [nn.Conv2d(channels, out, kernel), nn.ELU(), nn.MaxPool2d(2), nn.Dropout(p)]
            channels = out
        layers += [
            nn.Flatten(),
            nn.Linear(256 * 5 * 5, 1000),
            nn.ELU(),
            nn.Dropout(0.5),
            nn.Linear(1000, 1000),
            nn.ELU(),
            nn.Dropout(0.6),
            nn.Linear(1000, OUTPUTS),
        ]
        # kiln's preset starts the three linear layers Glorot uniform, and kiln fills the bias
        # with zeros for every initializer but the default one.
        for layer in layers:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
    elif name == "lenet-20m":
        layers = lenet(nn, [(32, 5, 1), (64, 5, 1), (128, 3, 1), (256, 3, 2)], 256 * 6 * 6, 2000, 500)
    elif name == "lenet-48m":
        layers = lenet(nn, [(32, 5, 1), (32, 3, 1), (64, 3, 1), (64, 1, 1)], 64 * 13 * 13, 4096, 1024)
    else:
        raise SystemExit(f"pytorch_bench.py: unknown model '{name}': use one of {', '.join(MODELS)}")
    return nn.Sequential(*layers)


def lenet(nn, convs, features, hidden1, hidden2):
    """Return the layers of a LeNet-style preset: (out, kernel, stride) conv blocks, then dense."""
    layers = []
    channels = 1
    for out, kernel, stride in convs:
        layers += [nn.Conv2d(channels, out, kernel, stride=stride), nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    layers += [
        nn.Flatten(),
        nn.Linear(features, hidden1),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(hidden1, hidden2),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(hidden2, OUTPUTS),
    ]
    return layers


# The environment variables that can force TF32 on or off behind the flags that open_device sets:
# NVIDIA_TF32_OVERRIDE for the CUDA libraries, TORCH_ALLOW_TF32_CUBLAS_OVERRIDE for PyTorch's
# cuBLAS calls. The info records name their values, so that a report shows what was in effect.
TF32_VARIABLES = ("NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE")


def number_text(value):
    """Write a number in plain decimal notation without trailing zeros, as LayerText.java does."""
    return format(decimal.Decimal(repr(float(value))).normalize(), "f")


def pair_text(value):
    """Write an int or an (height, width) pair of a layer setting as HxW."""
    if isinstance(value, int):
        value = (value, value)
    return "x".join(str(size) for size in value)


def layer_text(nn, layer):
    """Return the canonical text of a layer's kind and settings, the form of kiln's LayerText.java."""
    if isinstance(layer, nn.Conv2d):
        return (f"conv in={layer.in_channels} out={layer.out_channels} "
                f"kernel={pair_text(layer.kernel_size)} stride={pair_text(layer.stride)} "
                f"padding={pair_text(layer.padding)} dilation={pair_text(layer.dilation)} "
                f"groups={layer.groups} bias={str(layer.bias is not None).lower()}")
    if isinstance(layer, nn.Linear):
        return (f"linear in={layer.in_features} out={layer.out_features} "
                f"bias={str(layer.bias is not None).lower()}")

    if isinstance(layer, nn.MaxPool2d):
        return (f"maxpool kernel={pair_text(layer.kernel_size)} stride={pair_text(layer.stride)} "
                f"padding={pair_text(layer.padding)} dilation={pair_text(layer.dilation)} "
                f"ceil_mode={str(layer.ceil_mode).lower()}")
    if isinstance(layer, nn.AvgPool2d):
        return (f"avgpool kernel={pair_text(layer.kernel_size)} stride={pair_text(layer.stride)} "
                f"padding={pair_text(layer.padding)} ceil_mode={str(layer.ceil_mode).lower()} "
                f"count_include_pad={str(layer.count_include_pad).lower()}")

    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        kind = "batchnorm1d" if isinstance(layer, nn.BatchNorm1d) else "batchnorm2d"
        return (f"{kind} features={layer.num_features} eps={number_text(layer.eps)} "
                f"momentum={number_text(layer.momentum)} affine={str(layer.affine).lower()} "
                f"track_running_stats={str(layer.track_running_stats).lower()}")

    if isinstance(layer, nn.Dropout):
        return f"dropout p={number_text(layer.p)}"
    if isinstance(layer, nn.Flatten):
        return f"flatten start_dim={layer.start_dim} end_dim={layer.end_dim}"

    if isinstance(layer, nn.ELU):
        return f"elu alpha={number_text(layer.alpha)}"
    if isinstance(layer, nn.LeakyReLU):
        return f"leaky_relu slope={number_text(layer.negative_slope)}"
    for kind, name in ((nn.ReLU, "relu"), (nn.Tanh, "tanh"), (nn.Sigmoid, "sigmoid")):
        if isinstance(layer, kind):
            return name

    raise SystemExit(f"pytorch_bench.py: no canonical text for layer type {type(layer).__name__}. "
                     f"Add it to layer_text and to LayerText.java")


def record(*fields):
    print("\t".join(str(field) for field in fields), flush=True)


def join_rates(rates):
    """Join rates with commas, each as repr writes it, which parses back to the same float.

    gpu-check.sh turns each rate of a one-step repeat back into that step's time, so the rates
    keep every digit.
    """
    return ",".join(repr(rate) for rate in rates)


def peak_resident_kib():
    """Return VmHWM, the peak resident set size of this process, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line")


def blas_libraries():
    """Return the real paths of the BLAS libraries mapped into this process, sorted.

    A library counts where its file name contains "blas": libblas.so.3 and libcblas.so.3, which
    Debian's alternatives point at the reference BLAS or at OpenBLAS, and libopenblas itself.
    """
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/" in line}
    return sorted({os.path.realpath(path) for path in paths
                   if "blas" in os.path.basename(path).lower()})


# The (prefix, suffix) pairs around OpenBLAS's function names. Debian's build has none. The
# scipy-openblas in NumPy 2.4.6's wheel has both (scipy_openblas_get_corename64_). The other two
# cover builds with only one of them, such as NumPy 1.x wheels' 64-bit-integer OpenBLAS.
# NOTE: only Debian's form and NumPy 2.4.6's form were checked against a real library.
OPENBLAS_SYMBOL_FORMS = [("", ""), ("", "64_"), ("scipy_", "64_"), ("scipy_", "")]


def openblas_function(library, name, restype=ctypes.c_int):
    """Look up OpenBLAS's function name (such as openblas_get_corename) in library.

    Tries each form of OPENBLAS_SYMBOL_FORMS, sets the result type of the function it finds and
    returns it. Raises AttributeError where the library has none of the forms.
    """
    for prefix, suffix in OPENBLAS_SYMBOL_FORMS:
        try:
            function = getattr(library, prefix + name + suffix)
        except AttributeError:
            continue
        function.restype = restype
        return function
    raise AttributeError(f"{name} not found")


def openblas_info():
    """Return (library path, core name, config) of the OpenBLAS mapped into this process.

    The path is None where no mapped BLAS library is OpenBLAS. It is then the first BLAS library
    found, or "none loaded", and the core name and config are "-".
    """
    libraries = blas_libraries()
    for path in libraries:
        try:
            library = ctypes.CDLL(path)
            corename = openblas_function(library, "openblas_get_corename", ctypes.c_char_p)
            config = openblas_function(library, "openblas_get_config", ctypes.c_char_p)
            return (path, corename().decode(), config().decode())
        except (OSError, AttributeError):
            continue
    return (None, libraries[0] if libraries else "none loaded", "-")


def openblas_threading(path):
    """Return how the OpenBLAS at path runs its threads: sequential, pthreads or OpenMP."""
    parallel = openblas_function(ctypes.CDLL(path), "openblas_get_parallel")
    return {0: "sequential", 1: "pthreads", 2: "OpenMP"}.get(parallel(), "unknown")


def require_openblas(user):
    """Return the path of the OpenBLAS that user (NumPy or PyTorch) calls, or exit with status 4.

    Debian's NumPy and PyTorch call libblas.so.3, which is the reference BLAS until an OpenBLAS
    package is installed. The reference BLAS runs on one thread without vector kernels, so
    PyTorch's linear layers and NumPy's matrix product would time that code instead of OpenBLAS.
    """
    path, found, _ = openblas_info()
    if path is None:
        print(f"pytorch_bench.py: {user} calls the BLAS library {found}, which is not OpenBLAS, "
              f"so its timings would not show {user} at its usual speed. Install OpenBLAS with: "
              f"apt-get install libopenblas0-openmp, and rerun", file=sys.stderr)
        sys.exit(4)
    return path


def torch_blas(torch):
    """Return the BLAS that PyTorch's CPU matrix products call, from its build settings."""
    match = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return match.group(1) if match else "unknown"


def import_torch():
    try:
        import torch
    except ImportError:
        print(f"pytorch_bench.py: PyTorch is not installed for {sys.executable}; install it with: "
              f"{INSTALL_HINT}", file=sys.stderr)
        sys.exit(3)
    return torch


def print_info(torch, threads, device):
    record("info", SIDE, "python", platform.python_version())
    record("info", SIDE, "torch", torch.__version__)
    record("info", SIDE, "threads", threads)
    record("info", SIDE, "cpus", len(os.sched_getaffinity(0)))
    if device.type == "cuda":
        record("info", SIDE, "cuda", torch.version.cuda)
        record("info", SIDE, "gpu", torch.cuda.get_device_name(device))
        record("info", SIDE, "cudnn", torch.backends.cudnn.version())
        for flag, value in precision_flags(torch):
            record("info", SIDE, flag, value)
        record("info", SIDE, "cudnn_benchmark", torch.backends.cudnn.benchmark)
        for variable in TF32_VARIABLES:
            record("info", SIDE, variable, os.environ.get(variable, "unset"))
    else:
        record("info", SIDE, "blas_info", torch_blas(torch))
    record("info", SIDE, "mkldnn", torch.backends.mkldnn.is_available())
    path, core, _ = openblas_info()
    if path is None:
        record("info", SIDE, "openblas", f"none; BLAS library {core}")
    else:
        record("info", SIDE, "openblas", f"{path} kernel {core} threads {openblas_threading(path)}")


class Workload:
    """One preset with a fixed random batch; the same work as kiln's KeypointWorkload."""

    def __init__(self, torch, name, batch, device):
        self.torch = torch
        self.batch = batch
        torch.manual_seed(42)
        # The model and the batch are made on the CPU and then moved, so the device does not
        # change the weights or the data. The optimizer is made after the move, so its state
        # lives on the device too.
        self.model = build_model(torch.nn, name).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters())
        self.images = torch.randn(batch, *INPUT_SHAPES[name]).to(device)
        self.targets = torch.randn(batch, OUTPUTS).to(device)

    def train_step(self):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.mse_loss(self.model(self.images), self.targets)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def infer_batch(self):
        self.model.eval()
        with self.torch.no_grad():
            return self.model(self.images)


def run_at_least(unit, count, seconds):
    """Run unit at least count times, and more until seconds have passed; return how many ran."""
    start = time.perf_counter()
    done = 0
    while done < count or time.perf_counter() - start < seconds:
        unit()
        done += 1
    return done


def time_rates(unit, work_per_unit, args, repeat_seconds=0.0, synchronize=lambda: None):
    """Run the warm-up, then return work_per_unit * units / seconds of each timed repeat.

    The warm-up runs at least args.warmup units, and more until args.warmup_seconds have passed,
    the same rule as kiln's side, which needs the time for its JIT compiler. A timed repeat runs
    at least args.steps units, and more until it has lasted repeat_seconds. synchronize runs after
    the warm-up and at the end of each timed repeat, before the clock stops. On a GPU it waits for
    the queued kernels, so a repeat's time is the time its work took.
    """
    run_at_least(unit, args.warmup, args.warmup_seconds)
    synchronize()
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        units = run_at_least(unit, args.steps, repeat_seconds)
        synchronize()
        rates.append(work_per_unit * units / (time.perf_counter() - start))
    return rates


def open_device(torch, name):
    """Return the torch.device for --device, and the function that waits for its queued work.

    Exit with status 3 and the reason when CUDA is requested but this PyTorch cannot use it, so
    that no CPU timing is ever reported as a GPU one.
    """
    if name == "cpu":
        return torch.device("cpu"), lambda: None
    if not torch.cuda.is_available():
        built_with = torch.version.cuda or "none (a CPU-only build)"
        print(f"pytorch_bench.py: --device {name} was requested, but torch {torch.__version__} "
              f"cannot use CUDA here (CUDA version it was built with: {built_with}; "
              f"devices found: {torch.cuda.device_count()}); use --device cpu or run on a "
              f"machine with an NVIDIA GPU and a CUDA build of PyTorch", file=sys.stderr)
        sys.exit(3)
    # kiln runs float32 convolutions with CUDNN_FMA_MATH and matrix products with cuBLAS's default
    # math, so neither uses TF32, and it picks cuDNN's algorithms by heuristic. PyTorch defaults to
    # TF32 in cuDNN's convolutions, so without these lines the two sides would not compute at the
    # same precision.
    use_full_float32(torch)
    torch.backends.cudnn.benchmark = False
    index = 0 if name == "cuda" else int(name[len("cuda:"):])
    if index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        print(f"pytorch_bench.py: --device {name} was requested, but this machine has "
              f"{count} CUDA device{'' if count == 1 else 's'}; use cuda:0 to cuda:{count - 1}",
              file=sys.stderr)
        sys.exit(3)
    device = torch.device("cuda", index)
    return device, lambda: torch.cuda.synchronize(device)


def has_fp32_precision_settings(torch):
    """Return whether this PyTorch has the fp32_precision settings, which PyTorch 2.9 has."""
    return hasattr(torch.backends.cuda.matmul, "fp32_precision")


def use_full_float32(torch):
    """Turn TF32 off in PyTorch's float32 matrix products and cuDNN's convolutions.

    PyTorch 2.9 replaced the allow_tf32 flags with fp32_precision settings, one for each backend
    and operation, and deprecated the old flags. It raises a RuntimeError where code reads a flag
    after the two kinds were mixed, so a PyTorch with the new settings gets only those. The RNN
    setting is set too, because PyTorch checks that cuDNN's convolution and RNN settings agree.
    """
    if has_fp32_precision_settings(torch):
        cudnn = torch.backends.cudnn
        backends = [torch.backends.cuda.matmul, cudnn]
        backends += [getattr(cudnn, name) for name in ("conv", "rnn") if hasattr(cudnn, name)]
        for backend in backends:
            backend.fp32_precision = "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def precision_flags(torch):
    """Return the settings that use_full_float32 changed, as (name, value) pairs to print."""
    if has_fp32_precision_settings(torch):
        cudnn = torch.backends.cudnn
        convolutions = cudnn.conv if hasattr(cudnn, "conv") else cudnn
        return [("matmul_fp32_precision", torch.backends.cuda.matmul.fp32_precision),
                ("cudnn_conv_fp32_precision", convolutions.fp32_precision)]
    return [("cudnn_allow_tf32", torch.backends.cudnn.allow_tf32),
            ("matmul_allow_tf32", torch.backends.cuda.matmul.allow_tf32)]


def device_name(text):
    """Return --device's value when it is cpu, cuda or cuda:N, for argparse."""
    if text in ("cpu", "cuda") or re.fullmatch(r"cuda:[0-9]+", text):
        return text
    raise argparse.ArgumentTypeError(f"invalid device '{text}': use cpu, cuda or cuda:N")


def require_cpu_blas(torch, device):
    """Exit with status 4 where PyTorch's CPU matrix products would not call OpenBLAS or MKL.

    PyTorch built with MKL (BLAS_INFO=mkl) contains its BLAS. Other builds call a BLAS library,
    which must then be OpenBLAS, and this warns where that OpenBLAS runs pthreads beside PyTorch's
    OpenMP threads. On a GPU the products run in cuBLAS, so nothing is checked there.
    """
    if device.type != "cpu":
        return
    blas = torch_blas(torch)
    if blas == "mkl":
        return
    path = require_openblas(f"PyTorch (BLAS_INFO={blas})")
    if "OpenMP" in torch.__config__.parallel_info() and openblas_threading(path) == "pthreads":
        print("pytorch_bench.py: warning: PyTorch runs its threads on OpenMP but OpenBLAS runs "
              "its own pthreads, so the two thread pools compete for the CPUs and slow PyTorch's "
              "side down. Install the OpenMP build and remove the pthreads one, which Debian "
              "prefers where both are installed: apt-get install libopenblas0-openmp && "
              "apt-get remove libopenblas0-pthread", file=sys.stderr)


def check():
    """Exit with status 4 where NumPy's or PyTorch's BLAS is not OpenBLAS, as gemm and run do.

    compare.sh runs this before any timing, so that a machine without OpenBLAS stops the
    comparison before it has spent minutes on kiln's side.
    """
    try:
        import numpy  # noqa: F401 (the import maps NumPy's BLAS library into this process)
    except ImportError:
        pass  # compare.sh skips the matrix product where NumPy is missing
    else:
        require_openblas("NumPy")
    try:
        import torch
    except ImportError:
        return
    require_cpu_blas(torch, torch.device("cpu"))


def describe(torch, args):
    for name in args.models:
        model = build_model(torch.nn, name)
        model.eval()
        shapes = []
        value = torch.zeros(1, *INPUT_SHAPES[name])
        with torch.no_grad():
            for layer in model:
                value = layer(value)
                shapes.append("x".join(str(size) for size in value.shape[1:]))
        parameters = sum(parameter.numel() for parameter in model.parameters())
        layers = "; ".join(layer_text(torch.nn, layer) for layer in model)
        record("describe", SIDE, name, parameters, " ".join(shapes), layers)


def run(torch, args):
    device, synchronize = open_device(torch, args.device)
    require_cpu_blas(torch, device)
    print_info(torch, args.threads, device)
    for name in args.models:
        for batch in args.batches:
            workload = Workload(torch, name, batch, device)
            for mode in args.modes:
                unit = workload.train_step if mode == "train" else workload.infer_batch
                rates = time_rates(unit, batch, args, args.repeat_seconds, synchronize)
                record("throughput", SIDE, name, batch, mode, join_rates(rates))


def rss(torch, args):
    device, synchronize = open_device(torch, args.device)
    require_cpu_blas(torch, device)
    print_info(torch, args.threads, device)
    name, batch = args.models[0], args.batches[0]
    workload = Workload(torch, name, batch, device)
    rates = time_rates(workload.train_step, batch, args, args.repeat_seconds, synchronize)
    record("throughput", SIDE, name, batch, "train", join_rates(rates))
    record("rss", SIDE, name, batch, "train", peak_resident_kib())


def gemm(args):
    import numpy

    n = args.size
    generator = numpy.random.default_rng(42)
    a = generator.standard_normal((n, n), dtype=numpy.float32)
    b = generator.standard_normal((n, n), dtype=numpy.float32)
    c = numpy.empty((n, n), dtype=numpy.float32)
    require_openblas("NumPy")
    record("info", "openblas", "numpy", numpy.__version__)
    path, core, config = openblas_info()
    record("info", "openblas", "library", path)
    record("info", "openblas", "kernel", core)
    record("info", "openblas", "threading", openblas_threading(path))
    record("info", "openblas", "config", config)
    record("info", "openblas", "threads", os.environ.get("OPENBLAS_NUM_THREADS", "default"))
    record("info", "openblas", "cpus", len(os.sched_getaffinity(0)))
    rates = time_rates(lambda: numpy.matmul(a, b, out=c), 2.0 * n * n * n / 1e9, args)
    record("gemm", "openblas", n, join_rates(rates))


def comma_list(text):
    return [part for part in text.split(",") if part]


def main():
    # gpu-check.sh stops a stage that runs past its limit with SIGQUIT, which by default ends Python
    # without a word. With this, every thread's stack goes to stderr first, as a JVM's does.
    try:
        faulthandler.register(signal.SIGQUIT, all_threads=True, chain=False)
    except (AttributeError, OSError, RuntimeError, ValueError):
        pass  # stderr is closed or is not a file, so there is nowhere to write the stacks
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "describe", "run", "gemm", "rss"])
    parser.add_argument("--models", type=comma_list, default=MODELS, help="presets, comma-separated")
    parser.add_argument("--batches", type=lambda text: [int(x) for x in comma_list(text)],
                        default=[10, 32], help="batch sizes, comma-separated")
    parser.add_argument("--modes", type=comma_list, default=["train", "infer"],
                        help="train, infer or both, comma-separated")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed units of work before timing, at least"
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=5.0,
        help="keep warming up until this many seconds have passed",
    )
    parser.add_argument(
        "--repeat-seconds",
        type=float,
        default=0.5,
        help="for the models, extend each timed repeat by whole units until it lasts this long",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats")
    parser.add_argument("--steps", type=int, default=1, help="units of work per timed repeat")
    parser.add_argument("--size", type=int, default=1024, help="GEMM size N for N x N x N")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for PyTorch and OpenBLAS (default: all cores)")
    parser.add_argument("--device", type=device_name, default="cpu",
                        help="where run and rss train and infer: cpu (default), cuda (the "
                             "first GPU) or cuda:N; describe and gemm always use the CPU")
    args = parser.parse_args()
    for mode in args.modes:
        if mode not in ("train", "infer"):
            parser.error(f"invalid mode '{mode}' in --modes: use train, infer or both")
    for name in args.models:
        if name not in MODELS:
            parser.error(f"unknown model '{name}': use one of {', '.join(MODELS)}")

    # OpenBLAS reads its thread count once, when the library loads, so set it before any import.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.command == "gemm":
        gemm(args)
        return
    if args.command == "check":
        check()
        return
    torch = import_torch()
    torch.set_num_threads(args.threads)
    {"describe": describe, "run": run, "rss": rss}[args.command](torch, args)


if __name__ == "__main__":
    main()
