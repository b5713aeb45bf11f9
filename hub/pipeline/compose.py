"""The pipeline: its stages applied in order, read top to bottom in one place."""

from __future__ import annotations

from hub.model import Stage, Submission


def compose(*stages: Stage) -> Stage:
    """The pipeline: `stages` applied in order."""

    def pipeline(submission: Submission) -> Submission:
        for stage in stages:
            submission = stage(submission)
        return submission

    return pipeline
