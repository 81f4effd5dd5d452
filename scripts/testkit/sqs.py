"""Creating a queue whose redrive policy names a dead-letter queue made a moment before, as AWS
allows it: CreateQueue's reference says "you must wait at least one second after the queue is
created to be able to use the queue", and until then the redrive policy is refused
(InvalidParameterValue, "Dead letter target does not exist"); the emulator holds to that.

Standard library only: the client (boto3's) is passed in.
"""

from __future__ import annotations

import time
from typing import Any


def create_queue_with_redrive(
    sqs: Any, name: str, attributes: dict[str, str], timeout: float = 5
) -> str:
    """Creates the queue, retrying while its dead-letter queue is not usable yet; its URL."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code")
            if code != "InvalidParameterValue" or time.monotonic() > deadline:
                raise
            time.sleep(0.25)
