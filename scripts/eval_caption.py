"""Score captions with the COCO caption metrics (pycocoevalcap) and print them as JSON.

Either a results file (``--results R.json``: ``[{"image_id", "caption"}]``) against a COCO captions
file (``--annotations``), or a trained checkpoint (``--checkpoint``) decoded on a split with beam
search (``--beam``). SPICE is scored only with ``--spice-jars DIR`` (Stanford CoreNLP 3.6.0);
otherwise its entry says why it is unavailable.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vln.cli import script_parser  # noqa: E402
from vln.errors import run_script  # noqa: E402


def build_parser():
    p = script_parser(__doc__)
    p.add_argument("--results", help="COCO-format results JSON [{image_id, caption}] (default: none; or --checkpoint)")
    p.add_argument("--annotations", help="COCO captions file with the references, captions_<split>.json (default: with --checkpoint, the references of its split)")
    p.add_argument("--checkpoint", help="a captioning run's checkpoint (latest.pt / best_*.pt) to decode (default: none)")
    p.add_argument("--split", default="test", help="split decoded with --checkpoint (val or test)")
    p.add_argument("--beam", type=int, default=5, help="beam size for --checkpoint (1 = greedy)")
    p.add_argument("--save-results", help="write the decoded captions (COCO format) here (default: not written)")
    p.add_argument("--spice-jars", help="folder holding stanford-corenlp-3.6.0.jar and its -models.jar (default: none, SPICE unavailable)")
    return p


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    from captioning.metrics import score_captions
    from vln.errors import DataFormatError
    from vln.io_utils import atomic_write_json, read_json
    from vlcorpus import read_coco_captions

    if args.checkpoint:
        from captioning.evaluate import decode_checkpoint

        results, references = decode_checkpoint(args.checkpoint, args.split, args.beam)
        if args.annotations:
            references = read_coco_captions(args.annotations)[1]
        if args.save_results:
            atomic_write_json(args.save_results, results)
        results_path = args.checkpoint
    else:
        if not (args.results and args.annotations):
            parser.error("give --results and --annotations, or --checkpoint")
        results = read_json(args.results)
        references = read_coco_captions(args.annotations)[1]
        results_path = args.results
    if not isinstance(results, list):
        raise DataFormatError(results_path, None, None, "must be a JSON list of {image_id, caption}")
    scores = score_captions(results, references, spice_jars=args.spice_jars, results_path=results_path)
    print(json.dumps(scores, indent=1))
    return scores


if __name__ == "__main__":
    run_script(main)
