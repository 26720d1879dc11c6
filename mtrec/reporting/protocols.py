"""How each results table was taken, in the words its document prints beside it.

``benchmarks/README.md`` puts :data:`PROTOCOL` above the speed tables, :data:`COMPILE_PROTOCOL`
above the torch.compile table, :data:`QUALITY_PROTOCOL` above the quality rows and
:data:`MULTISCENARIO_PROTOCOL` above the multi-scenario benchmark.
"""

PROTOCOL = """\
How every number is taken (`mtrec/bench/`): synthetic inputs of each model's real shapes and
dtypes (ids in range, random floats, never zeros), fixed seeds, untimed warm-up steps, every timed
step followed by `synchronize` (CUDA only; a no-op on CPU), the median (p50) and p90 of the
per-step times; samples/s = batch / p50. A train step is zero_grad → loss → backward → Adam step;
inference is `predict` under `inference_mode`; on GPU both in fp32 and bf16 autocast. Peak memory
is `torch.cuda.max_memory_allocated` on GPU and the process RSS on CPU (everything the process
holds, so an upper bound). GFLOP/s are counted from the config for transformer models and by
`torch.utils.flop_counter` for the others; the fraction in the tables divides by the best of the
run's matmul ceiling steps, and each "FLOP bound" goal times the model's train step in alternation
with that matmul (medians of both, as every other goal's two sides), in three passes over the
models; the median pass counts, and the detail lists all three. The input-check, text-encoder and
typical-implementation goals are taken in three passes too (goals near their target flip with the
run-to-run noise of a few percent: "the target lies among them" says so). Rows named
`(epoch, data incl.)` time whole epochs including data loading. On Linux, `import mtrec` lets
glibc keep freed buffers of up to 32 MiB for reuse (`mtrec.utils.keep_freed_memory`), so a step
does not page-fault its activations in afresh every time."""


COMPILE_PROTOCOL = """\
Each model's train step compiled by `torch.compile` (Inductor) and eager, timed in alternation in
one run (`mtrec bench --compile`), so that the ratio is free of two runs' drift; "pays off" means
the compiled step is at least as fast. Compiling itself (tens of seconds per model and batch) is
not in the samples/s."""


QUALITY_PROTOCOL = """\
Written by the notebooks (`make tour` sets `MTREC_WRITE_RESULTS=1`), one row per dataset, model,
scenario, task and metric: mean ± sample std over the seeds shown, on the test split, after model
selection on validation only. Each notebook states its protocol next to its table."""


MULTISCENARIO_PROTOCOL = (
    "Protocol (`python -m mtrec.experiments.multiscenario`, written out in `datasets/README.md`): "
    "ML-100k split into three scenarios by user age (<25, 25–34, ≥35), label rating > 3, random "
    "8:1:1 split; Clothing reviews by department (6 scenarios). Every model is trained with Adam "
    "and early stopping on validation AUC; test AUC and LogLoss, overall and per scenario, mean ± "
    "std over 5 seeds, each model against Shared-Bottom (`sb+scenario`) by a paired t-test."
)
