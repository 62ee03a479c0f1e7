"""measure stage: raw runner readings → tidy rows.

Measuring one cell, the interface the sweep and the farm share (so neither reaches into the other):
- `settings.ProtocolSettings`: how every cell is measured, validated once;
- `model.load_model` / `model.build_variant`: a model with its reference outputs, once; each variant
  compressed and lowered to a `.pte` (or a failure row);
- `cell.probe_telemetry` / `cell.measure_cell`: a device's readings, once; a built variant measured
  on it through the protocol (repetitions, cool-down, sampling), into its row;
- `rows.base_row` / `rows.failed_row` / `rows.cell_row`: a row's identity, a failure, the one builder.
`sweep.run_sweep` interleaves many cells; `farm/` runs cells in parallel, one worker per phone.
"""
