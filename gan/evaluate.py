"""Evaluate a trained run: python -m gan.evaluate --workdir=DIR [--checkpoint best|latest|STEP].

Restores the EMA generator of a checkpoint (default: the best one kept by evaluation, else the latest), runs
`gan.evaluation.evaluator.Evaluator` against the run's dataset and held-out split, prints a table
and writes everything (scalars, confusion matrices, settings) to DIR/eval_<step>.json.

The attribute classifier the metrics use is the run's cached one (DIR/eval_classifier/), trained
now if the run never evaluated. Flags override the run's config.eval fields for this evaluation.
"""
import argparse
import sys
from typing import Dict, List, Optional

from gan import checkpoint as checkpoint_lib
from gan import destinations, errors, flag_style, quiet, rundir

# User errors -> exit code (README "When something goes wrong"); others are bugs.
EXIT_CODES = (
    (errors.OutputError, errors.EXIT_OUTPUT),
    (checkpoint_lib.CheckpointError, errors.EXIT_CHECKPOINT),
    (checkpoint_lib.CheckpointUnavailableError, errors.EXIT_STORAGE),
    (ValueError, errors.EXIT_USAGE), (FileNotFoundError, errors.EXIT_USAGE),
)

# Sections of the printed table: (title, metric-name prefixes in order).
_SECTIONS = (
    ('Quality (classifier feature space)', ('fid', 'kid', 'kid_stderr', 'precision', 'recall',
                                            'inception_fid')),
    ('Per attribute value (intra-FID) and within one full condition (diversity vs catalogue)',
     ('intra_fid/', 'diversity/')),
    ('Real-vs-real floor (train vs held-out)', ('fid_floor', 'kid_floor', 'kid_floor_stderr',
                                                'precision_floor', 'recall_floor')),
    ('Memorisation (nearest training image)', ('memorisation_gen_median',
                                               'memorisation_real_median', 'memorisation_ratio')),
    ('Control: one attribute requested, the others drawn as the catalogue has them',
     ('control_acc/',)),
    ('Control: one attribute requested, the others the model\'s "unspecified" label',
     ('control_acc_unspecified/',)),
    ('Control: all attributes requested', ('control_acc_joint/',)),
    ('Classifier held-out accuracy', ('classifier_acc/',)),
)


def format_table(scalars: Dict[str, float], title: str = '') -> str:
  """A plain-text table of 'eval/...' scalars, grouped by section."""
  names = {k[len('eval/'):] if k.startswith('eval/') else k: v for k, v in scalars.items()}
  width = max([len(n) for n in names] + [10])
  lines, shown = ([title] if title else []), set()
  for section, keys in _SECTIONS:
    rows = []
    for key in keys:
      matches = [n for n in names if n == key or (key.endswith('/') and n.startswith(key))]
      for n in (sorted(matches) if key.endswith('/') else matches):
        if n not in shown:
          shown.add(n)
          rows.append(f'  {n:<{width}}  {names[n]:>12.6g}')
    if rows:
      lines += [section] + rows
  rest = [n for n in sorted(names) if n not in shown]
  if rest:
    lines += ['Other'] + [f'  {n:<{width}}  {names[n]:>12.6g}' for n in rest]
  return '\n'.join(lines)


def run_evaluation(workdir: str, checkpoint: str = 'best', num_samples: Optional[int] = None,
                   inception_weights: Optional[str] = None, output: Optional[str] = None) -> dict:
  """Evaluates one checkpoint of a run; returns the report that is also written as JSON."""
  import tensorflow as tf
  from gan.control import loading
  from gan.data import pipeline
  from gan.evaluation import evaluator as evaluator_lib

  tf.config.set_visible_devices([], 'GPU')  # tf.data only; keep TF off the accelerators.
  run = loading.load_run(workdir, checkpoint)
  config = run.config
  with config.unlocked():
    if num_samples is not None:
      config.eval.num_samples = int(num_samples)
    if inception_weights is not None:
      config.eval.inception_weights = inception_weights
  spec = pipeline.open_dataset(config.data.name, config.data.data_dir, config.data.attributes,
                               expected=run.vocabulary if config.model.conditional else None)
  if config.model.conditional and spec.vocabulary != run.vocabulary:
    raise ValueError(f'The dataset {config.data.name!r} now has attributes '
                     f'{dict(spec.vocabulary.attributes)}, but the run was trained with '
                     f'{dict(run.vocabulary.attributes)}; its labels would not match.')
  evaluator = evaluator_lib.Evaluator(config, spec, workdir, sampler=run.sampler)
  result = evaluator.evaluate_full(run.state)
  report = {'workdir': workdir, 'step': run.step, 'checkpoint': run.checkpoint,
            'metrics': result.scalars, 'confusion': result.confusion, 'notes': result.notes,
            'settings': evaluator.settings()}
  path = output or rundir.eval_report_path(workdir, run.step)
  with destinations.writing(path, 'the report'):
    rundir.write_json(path, report)
  report['path'] = path
  return report


def build_parser() -> argparse.ArgumentParser:
  parser = flag_style.ArgumentParser(prog='python -m gan.evaluate', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True, help='Workdir of a training run.')
  parser.add_argument('--checkpoint', default='best',
                      help='best (default; falls back to the latest), latest, or a step number.')
  parser.add_argument('--num-samples', type=int, default=None,
                      help='Generated images for FID/KID/precision/recall (default: the run\'s '
                      'config.eval.num_samples). Compare FIDs only at equal counts.')
  parser.add_argument('--inception-weights', default=None,
                      help='Local Inception-V3 weights (.npz) for an extra Inception FID.')
  parser.add_argument('--output', default=None, help='JSON path (default: WORKDIR/eval_STEP.json).')
  quiet.add_flag(parser)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    # Before the work: the report's destination (by default the workdir) must take a file.
    if args.output:
      destinations.check_file(args.output, '--output', 'eval.json')
    else:
      destinations.check_folder(args.workdir, '--workdir')
    # The logs that would show progress are quiet by default: say what the wait is for.
    print(f'Evaluating {args.workdir} ({args.checkpoint} checkpoint); a first evaluation of a run '
          f'trains its judge classifier and caches it in {rundir.EVAL_CLASSIFIER}/ (minutes on a '
          'CPU).', flush=True)
    with quiet.logs(args.verbosity):
      report = run_evaluation(args.workdir, args.checkpoint, args.num_samples,
                              args.inception_weights, args.output)
  except errors.kinds(EXIT_CODES) as e:
    return errors.report(parser.prog, e, EXIT_CODES)
  s = report['settings']
  print(format_table(report['metrics'], f'Step {report["step"]} ({report["checkpoint"]} '
                     f'checkpoint), {s["num_samples"]} generated vs {s["num_real"]} held-out '
                     f'images, {s["feature_space"]}'))
  for note in report['notes']:
    print(f'note: {note}')
  print(f'Written to {report["path"]}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
