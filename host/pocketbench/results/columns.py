"""Every result column declared once: its name, type, unit, the docs section it belongs to,
whether every row carries it, and what it means.

The store's column list (results/store.py: COLUMNS, in this order) is made from it and
docs/results-schema.md's column tables are generated from it (`python -m
pocketbench.results.columns docs/results-schema.md` rewrites them; tests/test_result_columns.py fails
when the page and this list differ). A new column is one entry here.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pocketbench.results.migrations import SCHEMA_VERSION

# Sections of docs/results-schema.md, each a table between `<!-- columns: NAME -->` and `<!-- /columns -->`.
SECTIONS = ("row", "run", "measurement", "tune", "generative", "comparison")


@dataclass(frozen=True)
class ResultColumn:
    """One column of the results (units are also in the names: `_ms`, `_kb`, `_bytes`, …)."""

    name: str
    type: str  # as the docs say it: int, float, str (JSON), list[float], …
    unit: str  # "" for none
    section: str  # one of SECTIONS
    always: bool  # every row carries it (the store adds it, empty, where a row lacks it)
    description: str


def _c(name: str, type_: str, unit: str, section: str, always: bool, *description: str) -> ResultColumn:
    return ResultColumn(name, type_, unit, section, always, "".join(description))


# fmt: off
RESULT_COLUMNS: tuple[ResultColumn, ...] = (
    _c('run_id', 'str', '', 'row', True,
       'the run this row belongs to'),
    _c('model', 'str', '', 'row', True,
       'model name as given (`digits_cnn`, `file.py:factory`, …)'),
    _c('variant', 'str', '', 'row', True,
       'variant name: recipe step tokens joined by `+` (`fp32`, `int8`, …)'),
    _c('device', 'str', '', 'row', True,
       'device id (`local`, `tcp:HOST:PORT`, …)'),
    _c('status', 'str', '', 'row', True,
       '`ok`; `partial` (a cell cut short that kept its finished repetitions; why in `error`); or why not: '
       '`model_error`, `recipe_error`, `compress_error` (the error starts with the step, e.g. '
       '`channel_prune: …`), `export_error`, `bad_outputs` (the outputs the device wrote are unusable), '
       "`device_error`, `device_unhealthy` (a farm phone failed its health check), the runner's own "
       '`bad_arguments`, `load_failed`, `execution_failed`, `crashed` (a runner killed by a signal names '
       'it), `bad_report` (exit 0 with unusable JSON), `timeout`, `interrupted` (the phone went away twice '
       'mid-run); `not_run` (a farm cell never started: its phone was absent or quarantined); `pruned` (a '
       'tune trial screened out). `pocketbench.results.cell_status.CellStatus` holds the list'),
    _c('error', 'str', '', 'row', True,
       'one-line error message when `status` is not `ok`'),
    _c('recipe', 'str (JSON)', '', 'row', True,
       'the full compression recipe of the variant'),
    _c('size_bytes', 'int', 'bytes', 'row', True,
       'size of the `.pte` file'),
    _c('size_ratio_vs_fp32', 'float', '', 'row', True,
       "`size_bytes` / the same model's fp32 `size_bytes` on the same device"),
    _c('size_zipped_bytes', 'int', 'bytes', 'row', True,
       'the `.pte` compressed with zlib level 9 (what unstructured sparsity shrinks)'),
    _c('compression_ratio_vs_fp32', 'float', '', 'row', True,
       "the same model's fp32 `size_zipped_bytes` / this `size_zipped_bytes`"),
    _c('params', 'int', '', 'row', True,
       'parameters of the compressed model (counted before quantization)'),
    _c('macs', 'int', '', 'row', True,
       "multiply-accumulates of one forward pass on the example inputs (torch's flop counter / 2)"),
    _c('macs_ratio_vs_fp32', 'float', '', 'row', True,
       "`macs` / the same model's fp32 `macs`"),
    _c('sparsity', 'float', '', 'row', True,
       'fraction of conv/linear weights that are exactly zero'),
    _c('layer_sqnr_min_db', 'float', 'dB', 'row', True,
       'int8 output SQNR of each conv/linear layer vs fp32 (`Quantize` steps): the worst, and all by layer '
       'name'),
    _c('layer_sqnr_db', 'str (JSON)', 'dB', 'row', True,
       'int8 output SQNR of each conv/linear layer vs fp32 (`Quantize` steps): the worst, and all by layer '
       'name'),
    _c('compression_note', 'str', '', 'row', True,
       'layers a step left alone: kept in fp32 (mixed precision, `w4`, recurrent layers the int8 quantizer '
       'does not take, with their share of the weights), or the only ones channel-pruned'),
    _c('planned_memory_bytes', 'int', 'bytes', 'row', True,
       'memory-planned buffers the `.pte` declares (activations)'),
    _c('latency_p50_ms', 'float', 'ms', 'row', True,
       'p50, p90, p99, mean, std (ddof 1), min, max of the timed iterations'),
    _c('latency_p90_ms', 'float', 'ms', 'row', True,
       'p50, p90, p99, mean, std (ddof 1), min, max of the timed iterations'),
    _c('latency_p99_ms', 'float', 'ms', 'row', True,
       'p50, p90, p99, mean, std (ddof 1), min, max of the timed iterations'),
    _c('latency_mean_ms', 'float', 'ms', 'row', True,
       'p50, p90, p99, mean, std (ddof 1), min, max of the timed iterations'),
    _c('latency_std_ms', 'float', 'ms', 'row', True,
       'p50, p90, p99, mean, std (ddof 1), min, max of the timed iterations'),
    _c('latency_min_ms', 'float', 'ms', 'row', True,
       'p50, p90, p99, mean, std (ddof 1), min, max of the timed iterations'),
    _c('latency_max_ms', 'float', 'ms', 'row', True,
       'p50, p90, p99, mean, std (ddof 1), min, max of the timed iterations'),
    _c('speedup_vs_fp32', 'float', '', 'row', True,
       'fp32 `latency_p50_ms` / this `latency_p50_ms`'),
    _c('latency_samples_ms', 'list[float]', 'ms', 'row', True,
       'every timed iteration, raw (v1 name: `samples_ms`)'),
    _c('iterations', 'int', '', 'row', True,
       'number of timed iterations'),
    _c('load_ms', 'float', 'ms', 'row', True,
       'program + method load time'),
    _c('first_inference_ms', 'float', 'ms', 'row', True,
       'the first (untimed) inference'),
    _c('peak_rss_kb', 'int', 'kB', 'row', True,
       'peak resident set (VmHWM) of the runner process'),
    _c('rss_kb_before_load', 'int', 'kB', 'row', True,
       'resident set before loading the model and after the timed loop'),
    _c('rss_kb_after_loop', 'int', 'kB', 'row', True,
       'resident set before loading the model and after the timed loop'),
    _c('accuracy', 'float (fraction)', '', 'row', True,
       "score on the model's held-out labels (models that have them)"),
    _c('accuracy_vs_fp32_points', 'float', 'points', 'row', True,
       '100 × (accuracy − fp32 accuracy)'),
    _c('sqnr_db', 'float', 'dB', 'row', True,
       'signal-to-quantization-noise ratio of the outputs vs the fp32 eager model'),
    _c('max_abs_error', 'float', '', 'row', True,
       'largest absolute output difference vs the fp32 eager model'),
    _c('top1_agreement', 'float (fraction)', '', 'row', True,
       'share of inputs whose argmax matches the fp32 eager model'),
    _c('delegated_fraction', 'float (fraction)', '', 'row', True,
       'share of graph ops XNNPACK runs'),
    _c('ops_outside_delegate', 'str', '', 'row', True,
       'ops left outside XNNPACK, `op×count, …`'),
    _c('delegation_note', 'str', '', 'row', True,
       'the same ops grouped by cause: recurrent layers unrolled, normalisations and shape ops XNNPACK does '
       'not take'),
    _c('backend', 'str', '', 'row', True,
       '`native-runner` or `python-runtime`'),
    _c('runtime_version', 'str', '', 'row', True,
       'ExecuTorch runtime the device ran'),
    _c('threads', 'int', '', 'row', True,
       'runtime threads used'),
    _c('artifact_sha256', 'str', '', 'row', True,
       'sha256 of the `.pte`'),
    _c('artifact_reused', 'bool', '', 'row', True,
       'the `.pte` came from the artifact cache'),
    _c('compress_seconds', 'float', 's', 'row', True,
       'time spent compressing and lowering (0 when reused)'),
    _c('export_seconds', 'float', 's', 'row', True,
       'time spent compressing and lowering (0 when reused)'),
    _c('device_kind', 'str', '', 'row', True,
       '`local`, `adb`, …'),
    _c('device_model', 'str', '', 'row', True,
       'device identity'),
    _c('device_abi', 'str', '', 'row', True,
       'device identity'),
    _c('device_os', 'str', '', 'row', True,
       'device identity'),
    _c('device_cpu', 'str', '', 'row', True,
       'device identity'),
    _c('device_cpu_features', 'str', '', 'row', True,
       'device identity'),
    _c('device_host', 'str', '', 'row', False,
       "a farm phone's lab host (its `[[servers]]` name; empty: this computer) (docs/farm.md, \"A lab of many "
       'hosts")'),
    _c('device_adb_server', 'str', '', 'row', False,
       'the address of the adb server that reached the phone (`HOST:PORT`; docs/farm.md, "A lab of many '
       'hosts")'),
    _c('device_state_json', 'str (JSON)', '', 'row', True,
       "the device's state around the cell (battery, thermal, frequencies), filled by the devices that read "
       'it'),
    _c('attempt', 'int', '', 'row', True,
       '1 for the first try of a cell in a run, 2 for a retry, … (v1: always 1)'),
    _c('started_at', 'str (ISO 8601, UTC)', '', 'row', True,
       'when the cell started'),
    _c('schema_version', 'int', '', 'row', True,
       f'schema the row is in (readers migrate older files: every loaded row says {SCHEMA_VERSION})'),
    _c('repetitions', 'int', '', 'measurement', True,
       'runner processes the cell was measured with'),
    _c('samples_repetition', 'list[int]', '', 'measurement', True,
       'repetition index (0-based) of each entry of `latency_samples_ms`'),
    _c('latency_p50_ci_low_ms', 'float', 'ms', 'measurement', True,
       '95 % bootstrap CI of the median (repetitions resampled, then samples within them), widened to the '
       "Student-t interval of the repetitions' medians when that is wider"),
    _c('latency_p50_ci_high_ms', 'float', 'ms', 'measurement', True,
       '95 % bootstrap CI of the median (repetitions resampled, then samples within them), widened to the '
       "Student-t interval of the repetitions' medians when that is wider"),
    _c('latency_cv', 'float', '', 'measurement', True,
       'std / mean of all samples (a few preempted calls inflate it; see the next)'),
    _c('latency_repetition_cv', 'float', '', 'measurement', True,
       "std / mean of the repetitions' medians (run-to-run noise)"),
    _c('unstable', 'bool', '', 'measurement', True,
       'the p50 should not be trusted as it is'),
    _c('unstable_reason', 'str', '', 'measurement', True,
       "why: the p50's 95 % CI wider than ±5 % (with its cause: repetitions' p50 CV ≥ 5 %, processes at two "
       'speeds), robust CV ≥ 10 %, min < 0.5× the median, single calls under 0.1 ms (not when batched). A '
       'max far above the median is `latency_tail_note`, not instability'),
    _c('speedup_ci_low', 'float', '', 'measurement', True,
       '95 % bootstrap CI of fp32 median / this median'),
    _c('speedup_ci_high', 'float', '', 'measurement', True,
       '95 % bootstrap CI of fp32 median / this median'),
    _c('speedup_p_value', 'float', '', 'measurement', True,
       'two-sided Mann-Whitney U on the raw samples against fp32'),
    _c('speedup_significant', 'bool', '', 'measurement', True,
       'p < 0.05 and the CI excludes 1; the table shows `n.s.` otherwise'),
    _c('energy_sources', 'str', '', 'measurement', True,
       'every energy source found on the device (`ODPM iio:device0 (3 rails), battery fuel gauge`) or `not '
       'available: <why>`'),
    _c('energy_source', 'str', '', 'measurement', True,
       'the source the energy columns come from'),
    _c('energy_status', 'str', '', 'measurement', True,
       'why there is no energy figure (`not available: …`, `battery was Charging …`), or notes on it '
       '(current unit, sign convention)'),
    _c('energy_charging', 'bool', '', 'measurement', True,
       'the battery said Charging or Full while the fuel gauge the energy comes from was read: the figure '
       'was refused (`energy_status` says how to avoid it) or kept with `--allow-charging`; false otherwise '
       '(another source, or none: `energy_status` says why); null in rows without energy columns'),
    _c('energy_mj_per_inference', 'float', 'mJ', 'measurement', True,
       'net energy per inference, mean over repetitions (mJ)'),
    _c('energy_mj_per_inference_err', 'float', 'mJ', 'measurement', True,
       'its uncertainty: the larger of the spread between repetitions and the sampling error (mJ)'),
    _c('energy_gross_mj', 'float', 'mJ', 'measurement', True,
       "during the loop; the idle power over the loop's length; their difference (mJ, mean over repetitions)"),
    _c('energy_idle_mj', 'float', 'mJ', 'measurement', True,
       "during the loop; the idle power over the loop's length; their difference (mJ, mean over repetitions)"),
    _c('energy_net_mj', 'float', 'mJ', 'measurement', True,
       "during the loop; the idle power over the loop's length; their difference (mJ, mean over repetitions)"),
    _c('power_idle_w', 'float', 'W', 'measurement', True,
       'mean power in the idle window and during the loop (W)'),
    _c('power_loop_w', 'float', 'W', 'measurement', True,
       'mean power in the idle window and during the loop (W)'),
    _c('peak_rss_swap_kb', 'int', 'kB', 'measurement', True,
       'max of VmHWM and sampled VmRSS + VmSwap over the run'),
    _c('rss_delta_kb', 'int', 'kB', 'measurement', True,
       'VmHWM minus VmRSS before the model loaded (what the model costs beyond the runtime)'),
    _c('temp_start_c', 'float', '°C', 'measurement', True,
       'hottest thermal zone at the start of the first and the end of the last repetition'),
    _c('temp_end_c', 'float', '°C', 'measurement', True,
       'hottest thermal zone at the start of the first and the end of the last repetition'),
    _c('thermal_status_end', 'int', '', 'measurement', True,
       'Android thermal status (0 none … 6 shutdown) after the last repetition'),
    _c('cooldown_s', 'float', 's', 'measurement', True,
       'seconds waited before the repetitions for the device to cool back to idle'),
    _c('cooldown_note', 'str', '', 'measurement', True,
       'set when the wait hit its timeout, with the zones still hot'),
    _c('throttled', 'bool', '', 'measurement', True,
       'a CPU max frequency dropped or the thermal status rose during a repetition'),
    _c('throttle_reason', 'str', '', 'measurement', True,
       'which policy dropped to what, or the status change'),
    _c('thermal_json', 'str (JSON)', '', 'measurement', True,
       'per repetition: zones, status, max/current MHz per policy at start and end, cool-down'),
    _c('batch_calls', 'int', '', 'measurement', True,
       'calls per timed sample (calibrated batches; the most over the processes; 1: single calls)'),
    _c('samples_batch_calls', 'list[int]', '', 'measurement', True,
       'calls per sample of each repetition'),
    _c('latency_batches_ms', 'list[float]', 'ms', 'measurement', True,
       'the raw batch times, one per entry of `latency_samples_ms` (= it × calls)'),
    _c('latency_tails_from_batches', 'bool', '', 'measurement', True,
       'p90/p99 are of batches of calls, not of single calls'),
    _c('latency_p50_ci_halfwidth', 'float', '', 'measurement', True,
       '(CI high − CI low) / 2 / p50: what adaptive repetitions drive under `--ci-target`'),
    _c('repetitions_stop', 'str', '', 'measurement', True,
       'why the cell stopped adding processes: `ci_target`, `budget`, `max_processes`, `fixed` '
       '(`--repetitions N`), `failed`'),
    _c('repetitions_target_met', 'bool', '', 'measurement', True,
       'the CI half-width is within `--ci-target`'),
    _c('latency_modes', 'str', '', 'measurement', True,
       'processes settled at two speeds: both p50s and how many processes each (else null); when they '
       "widen the p50's CI past ±5 % (`latency_p50_ci_halfwidth`) they are also in `unstable_reason`"),
    _c('latency_robust_cv', 'float', '', 'measurement', True,
       '1.4826 × MAD / median of all samples: the spread of their bulk, which tails do not move'),
    _c('latency_tail_note', 'str', '', 'measurement', True,
       'samples over 2× the p50 (preempted or slow calls): how many and the max; they move the mean, CV and '
       'p99, not the p50 (else null)'),
    _c('threads_source', 'str', '', 'measurement', True,
       "where `threads` came from: `settings` (`--threads N`, the API's `threads=`, a farm matrix: the farm "
       "defaults to 1), `device` (the device's default: 1 on the local device), `runtime` (the runtime's "
       'own: phones, or `--threads 0`)'),
    _c('threads_note', 'str', '', 'measurement', True,
       'why the device chose its default (`threads_source` `device`; else null)'),
    _c('profile_execute_ms', 'float', 'ms', 'measurement', True,
       'with `--profile`: median time of one inference in the traced run (ETDump on, so a little slower than'
       ' `latency_p50_ms`)'),
    _c('profile_delegated_ms', 'float', 'ms', 'measurement', True,
       'of that, the time inside XNNPACK delegate calls'),
    _c('profile_outside_ms', 'float', 'ms', 'measurement', True,
       'of that, the time in operators ExecuTorch ran itself, outside the delegate'),
    _c('profile_trace', 'str', '', 'measurement', True,
       "the cell's ETDump trace in the run folder (`profiles/….etdp`); open it with ExecuTorch's Inspector "
       "and the artifact's `etrecord.bin`"),
    _c('profile_note', 'str', '', 'measurement', True,
       'why a cell asked to be profiled has no profile'),
    _c('output_input_dependence', 'float (ratio)', '', 'row', False,
       'how much the fp32 outputs depend on the input: variance of each output element across the eval '
       'inputs ÷ variance within one output (≈ 0 for an untrained deep network)'),
    _c('fidelity_note', 'string or null', '', 'row', False,
       'set when the model has no score and its outputs are nearly input-independent '
       '(`output_input_dependence` < 0.1): the fidelity figures describe an untrained network'),
    _c('run_created_at', 'str (ISO 8601, UTC)', '', 'run', False,
       'when the run started'),
    _c('git_sha', 'str', '', 'run', False,
       "pocketbench's git commit, when run from a checkout"),
    _c('host', 'str', '', 'run', False,
       'host name of the computer that ran pocketbench'),
    _c('tune_phase', 'str', '', 'tune', False,
       '`trial` (one trial, short protocol), `hand-written` (a candidate baseline, short protocol) or '
       '`front` (the front and baselines measured again together, full protocol)'),
    _c('tune_study', 'str', '', 'tune', False,
       "the Optuna study and the trial's number in it (`trial` rows)"),
    _c('tune_trial', 'int', '', 'tune', False,
       "the Optuna study and the trial's number in it (`trial` rows)"),
    _c('tune_values', 'list[float]', '', 'tune', False,
       'what the study was told: accuracy in points, and the objective (ms, mJ or MB)'),
    _c('tune_constraints', 'str (JSON)', '', 'tune', False,
       "each constraint's excess over its limit (≤ 0: met): `accuracy`, and `size`, `latency` when given"),
    _c('tune_screen_accuracy', 'list[float]', '', 'tune', False,
       'accuracy (points, on this host) before distillation and after each distillation epoch'),
    _c('kind', 'str', '', 'generative', False,
       '`generative` (absent/NaN for one-call models)'),
    _c('prompt_tokens', 'int', '', 'generative', False,
       "P, N and the model's KV-cache length"),
    _c('decode_tokens', 'int', '', 'generative', False,
       "P, N and the model's KV-cache length"),
    _c('context_tokens', 'int', '', 'generative', False,
       "P, N and the model's KV-cache length"),
    _c('ttft_ms', 'float', 'ms', 'generative', False,
       'time to first token: median prefill of P tokens over every timed generation, 95 % CI over prefills '
       'and processes'),
    _c('ttft_ci_low_ms', 'float', 'ms', 'generative', False,
       'time to first token: median prefill of P tokens over every timed generation, 95 % CI over prefills '
       'and processes'),
    _c('ttft_ci_high_ms', 'float', 'ms', 'generative', False,
       'time to first token: median prefill of P tokens over every timed generation, 95 % CI over prefills '
       'and processes'),
    _c('prefill_tok_s', 'float', 's', 'generative', False,
       "P / TTFT, CI from the TTFT's"),
    _c('prefill_tok_s_ci_low', 'float', '', 'generative', False,
       "P / TTFT, CI from the TTFT's"),
    _c('prefill_tok_s_ci_high', 'float', '', 'generative', False,
       "P / TTFT, CI from the TTFT's"),
    _c('decode_tok_s', 'float', 's', 'generative', False,
       '1000 / `latency_p50_ms`, CI from its CI (over tokens and processes)'),
    _c('decode_tok_s_ci_low', 'float', '', 'generative', False,
       '1000 / `latency_p50_ms`, CI from its CI (over tokens and processes)'),
    _c('decode_tok_s_ci_high', 'float', '', 'generative', False,
       '1000 / `latency_p50_ms`, CI from its CI (over tokens and processes)'),
    _c('decode_ms_p50', 'float', 'ms', 'generative', False,
       'decode ms/token percentiles (= `latency_p50_ms`, `latency_p90_ms`)'),
    _c('decode_ms_p90', 'float', 'ms', 'generative', False,
       'decode ms/token percentiles (= `latency_p50_ms`, `latency_p90_ms`)'),
    _c('perplexity', 'float', '', 'generative', False,
       "exp(mean next-token NLL) of the variant's `.pte` on the bundle's held-out windows (this host's "
       'ExecuTorch runtime)'),
    _c('perplexity_fp32', 'float', '', 'generative', False,
       "the fp32 eager model's perplexity and the change vs it, %"),
    _c('perplexity_delta_pct', 'float', '%', 'generative', False,
       "the fp32 eager model's perplexity and the change vs it, %"),
    _c('greedy_agreement', 'float', '', 'generative', False,
       "share of the N + 1 teacher-forced steps where the device's argmax equals fp32 eager's"),
    _c('kv_cache_bytes', 'int', 'bytes', 'generative', False,
       'bytes of the buffers the program mutates (the KV cache), part of `planned_memory_bytes`; null for '
       'models without'),
    _c('generated_ids', 'list[int]', '', 'generative', False,
       "the device's argmax ids (after the prompt, then after each forced token)"),
    _c('generations', 'int', '', 'generative', False,
       'timed generations (prompt + N decode steps) over every runner process'),
    _c('prefill_tok_s_mean', 'float', 'tok/s', 'generative', False,
       "llama-bench's `pp` statistic: P / each generation's prefill time, mean and sample sd over the "
       'generations'),
    _c('prefill_tok_s_sd', 'float', 'tok/s', 'generative', False,
       "llama-bench's `pp` statistic: P / each generation's prefill time, mean and sample sd over the "
       'generations'),
    _c('decode_tok_s_mean', 'float', 'tok/s', 'generative', False,
       "llama-bench's `tg` statistic: N / each generation's summed decode time, mean and sample sd"),
    _c('decode_tok_s_sd', 'float', 'tok/s', 'generative', False,
       "llama-bench's `tg` statistic: N / each generation's summed decode time, mean and sample sd"),
    _c('model_params', 'int', '', 'generative', False,
       "the fp32 model's parameter count (llama-bench's `params`)"),
    _c('speed_only', 'bool', '', 'generative', False,
       'a model with random weights (`llama_speed`): no perplexity columns'),
    _c('baseline_run_id', 'str', '', 'comparison', False,
       'the baseline run'),
    _c('baseline_latency_p50_ms', 'float', 'ms', 'comparison', False,
       "the baseline's p50"),
    _c('latency_p50_delta_ms', 'float', 'ms', 'comparison', False,
       'median of samples, this run minus baseline'),
    _c('latency_p50_change_pct', 'float', '%', 'comparison', False,
       "that delta in percent of the baseline's median"),
    _c('latency_p_value', 'float', '', 'comparison', False,
       'two-sided Mann-Whitney U test on the raw samples'),
    _c('latency_change_significant', 'bool', '', 'comparison', False,
       'p < 0.05'),
    _c('accuracy_delta_points', 'float', 'points', 'comparison', False,
       '100 × (accuracy − baseline accuracy)'),
    _c('size_delta_bytes', 'float', 'bytes', 'comparison', False,
       'size and peak RSS, this run minus baseline'),
    _c('peak_rss_delta_kb', 'float', 'kB', 'comparison', False,
       'size and peak RSS, this run minus baseline'),
)
# fmt: on


# Counts: nullable integers in every frame (a failed row's blank does not turn them into floats).
INTEGER_COLUMNS = [
    "size_bytes", "size_zipped_bytes", "params", "macs",
    "planned_memory_bytes", "iterations", "peak_rss_kb", "rss_kb_before_load", "rss_kb_after_loop",
    "threads", "attempt", "schema_version", "batch_calls",
]  # fmt: skip


def stored_columns() -> list[str]:
    """The columns every row carries, in the store's order."""
    return [c.name for c in RESULT_COLUMNS if c.always]


def column_table(section: str) -> str:
    """The docs table of one section; neighbours with one type and meaning share a row."""
    groups: list[list[ResultColumn]] = []
    for column in (c for c in RESULT_COLUMNS if c.section == section):
        last = groups[-1][-1] if groups else None
        same = last is not None and (last.type, last.description) == (column.type, column.description)
        if same:
            groups[-1].append(column)
        else:
            groups.append([column])
    lines = ["| column | type | unit | meaning |", "|---|---|---|---|"]
    for group in groups:
        names = ", ".join(f"`{c.name}`" for c in group)
        lines.append(f"| {names} | {group[0].type} | {group[0].unit} | {group[0].description} |")
    return "\n".join(lines)


_BLOCK = re.compile(r"(<!-- columns: (\w+) -->\n)(.*?)(<!-- /columns -->)", re.S)


def with_tables(page: str) -> str:
    """`page` with each marked column table regenerated."""
    return _BLOCK.sub(lambda m: f"{m.group(1)}{column_table(m.group(2))}\n{m.group(4)}", page)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results-schema.md")
    path.write_text(with_tables(path.read_text()))
