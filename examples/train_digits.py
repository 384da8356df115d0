"""Train a small neural network on scikit-learn's digits data set.

This script is the example job for bgrun, a short training run whose output
looks like that of a real one. Each epoch draws a tqdm progress bar over its
batches (to stderr, redrawn with carriage returns) and then prints one metrics
line (to stdout). The run ends with the test accuracy and exit code 0, or with
exit code 3 after the first epoch when --fail is given.

The digits data (1,797 8x8 images) ships inside scikit-learn, so the script
needs no network. Training itself takes under a second, so the per-batch sleep
set by --batch-delay makes up most of a default run. At the default 0.06 s,
8 epochs of 34 batches sleep for 16 s. A default run took about 20 s in total
on a 2-core Linux VM, including about 2 s to import scikit-learn.
"""

import argparse
import math
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from tqdm import tqdm

FAIL_EXIT_CODE = 3

# Pixel values in load_digits() are integers from 0 to 16.
MAX_PIXEL_VALUE = 16.0


def positive_int(text):
    """Parse an integer that must be 1 or more, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {value}: must be 1 or more")
    return value


def finite_float(text):
    """Parse a finite float, for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid value {text}: must be finite")
    return value


def positive_float(text):
    """Parse a finite float that must be greater than 0, for argparse."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid value {text}: must be greater than 0")
    return value


def non_negative_float(text):
    """Parse a finite float that must be 0 or more, for argparse."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text}: must be 0 or more")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train an MLP classifier on scikit-learn's bundled digits "
        "data set, with a tqdm progress bar per epoch.",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=8,
        help="number of passes over the training set (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        help="training samples per gradient step (default: %(default)s)",
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=3e-3,
        help="initial step size of the Adam optimizer (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-delay",
        type=non_negative_float,
        default=0.06,
        help="seconds to sleep after each batch so that progress is visible, "
        "or 0 to train at full speed (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed for the data split, weight initialization and "
        "batch order (default: %(default)s)",
    )
    parser.add_argument(
        "--fail",
        action="store_true",
        help=f"exit with code {FAIL_EXIT_CODE} after the first epoch, "
        "to show how a failed job looks",
    )
    return parser.parse_args(argv)


def load_splits(seed):
    """Split the digits data 60/20/20 into train, validation and test sets.

    Returns three (features, labels) pairs, with features scaled to [0, 1].
    """
    digits = load_digits()
    features = digits.data / MAX_PIXEL_VALUE
    labels = digits.target

    train_features, rest_features, train_labels, rest_labels = train_test_split(
        features, labels, test_size=0.4, random_state=seed, stratify=labels
    )
    val_features, test_features, val_labels, test_labels = train_test_split(
        rest_features, rest_labels, test_size=0.5, random_state=seed, stratify=rest_labels
    )
    return (
        (train_features, train_labels),
        (val_features, val_labels),
        (test_features, test_labels),
    )


def train_one_epoch(model, features, labels, classes, args, rng, description):
    """Run one shuffled pass of partial_fit over mini-batches.

    Returns the unweighted mean of the per-batch training losses. After each
    partial_fit call, MLPClassifier.loss_ is that batch's cross-entropy plus
    the L2 penalty, computed before the batch's weight update.
    """
    order = rng.permutation(len(labels))
    batch_starts = range(0, len(labels), args.batch_size)
    batch_losses = []

    for start in tqdm(batch_starts, desc=description, unit="batch"):
        batch = order[start : start + args.batch_size]
        model.partial_fit(features[batch], labels[batch], classes=classes)
        batch_losses.append(model.loss_)
        if args.batch_delay > 0:
            time.sleep(args.batch_delay)

    return float(np.mean(batch_losses))


def main(argv=None):
    args = parse_args(argv)
    run_start = time.monotonic()

    train, val, test = load_splits(args.seed)
    classes = np.unique(train[1])
    print(
        f"data: {len(train[1])} train, {len(val[1])} validation, "
        f"{len(test[1])} test samples",
        flush=True,
    )
    print(
        f"config: epochs={args.epochs} batch_size={args.batch_size} "
        f"learning_rate={args.learning_rate} batch_delay={args.batch_delay}s "
        f"seed={args.seed}",
        flush=True,
    )

    model = MLPClassifier(
        hidden_layer_sizes=(64,),
        learning_rate_init=args.learning_rate,
        random_state=args.seed,
    )
    rng = np.random.default_rng(args.seed)

    for epoch in range(1, args.epochs + 1):
        epoch_start = time.monotonic()
        description = f"epoch {epoch}/{args.epochs}"
        train_loss = train_one_epoch(model, *train, classes, args, rng, description)
        val_accuracy = model.score(*val)
        epoch_seconds = time.monotonic() - epoch_start
        # flush=True keeps stdout lines in order with tqdm's unbuffered stderr
        # when both go to one file and PYTHONUNBUFFERED is not set.
        print(
            f"epoch {epoch}/{args.epochs}: train_loss={train_loss:.4f} "
            f"val_acc={val_accuracy:.4f} time={epoch_seconds:.1f}s",
            flush=True,
        )

        if args.fail:
            print(
                f"error: --fail is set, exiting with code {FAIL_EXIT_CODE} "
                f"after epoch {epoch}",
                file=sys.stderr,
                flush=True,
            )
            return FAIL_EXIT_CODE

    test_accuracy = model.score(*test)
    total_seconds = time.monotonic() - run_start
    print(
        f"done: test_acc={test_accuracy:.4f} total_time={total_seconds:.1f}s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
