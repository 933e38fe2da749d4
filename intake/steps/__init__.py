"""The pipeline's steps, in order. Each is a small object with `name` and `async run(ctx)`."""
from intake.pipeline import Pipeline
from workflow.repeats import RepeatStep

from .acknowledge import Acknowledge
from .classify import Classify
from .customer import LinkCustomer
from .normalize import Normalize
from .register import Register
from .route import Route
from .thread import Thread


def default_pipeline() -> Pipeline:
    # The customer is linked before threading because a reference to a complaint is only
    # trusted when the sender is a known identity of that complaint's customer.
    # Repeat detection follows registration and precedes the acknowledgement, so a repeat's
    # raised urgency (at least P1) is the promise the customer is given.
    return Pipeline([Normalize(), LinkCustomer(), Thread(), Classify(), Route(), Register(), RepeatStep(),
                     Acknowledge()])


__all__ = ["default_pipeline", "Normalize", "LinkCustomer", "Thread", "Classify", "Route", "Register", "Acknowledge"]
