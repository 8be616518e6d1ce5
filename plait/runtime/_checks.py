"""What a Runtime refuses, said where the slip is made rather than met as an AttributeError later:
its arguments, a timeout, what is submitted, and starting or using a runtime inside a task."""

from __future__ import annotations

from collections.abc import Iterable

from plait.backends import Executor, running_task
from plait.dsl import App, Expr, Retry

__all__ = [
    "check_hook",
    "check_progress",
    "check_run_timeout",
    "chosen_executors",
    "not_an_expr",
    "refuse_in_task",
    "retry_policy",
]


def chosen_executors(given: object) -> list[Executor]:
    """The executors a Runtime is given (none: local processes), each checked, so that the
    usual slips are named where they are made, not met as an AttributeError later."""
    where = "Runtime(executors=...)"
    if isinstance(given, Executor):
        raise TypeError(f"{where} takes a list: executors=[{type(given).__name__}(...)]")
    if isinstance(given, str) or not isinstance(given, Iterable | None):
        raise TypeError(f"{where} takes a list of executors, not {type(given).__name__}")
    chosen = list(given or ())
    for index, item in enumerate(chosen):
        if isinstance(item, type):
            raise TypeError(f"{where}[{index}] is the class {item.__name__}: make one, {item.__name__}()")
        if not isinstance(item, Executor):
            raise TypeError(
                f"{where}[{index}] is a {type(item).__name__}, not an executor "
                "(such as plait.ProcessExecutor(), plait.ThreadExecutor() or plait.ZMQExecutor(...))"
            )
    labels = [executor.label for executor in chosen]
    for label in labels:
        if labels.count(label) > 1:
            raise ValueError(
                f"{where}: {labels.count(label)} executors are labelled {label!r}, and an app names its"
                f" executor by label: give each its own, label='...' (labels {labels})"
            )
    if chosen:
        return chosen
    from plait.backends import ProcessExecutor  # here: a runtime given its executors does not load the process pool

    return [ProcessExecutor()]


def retry_policy(retries: object) -> Retry:
    """A Runtime's ``retries=``, its default policy, or a TypeError naming the option."""
    try:
        policy = Retry.of(retries)  # type: ignore[arg-type]  # checked there
    except TypeError as error:
        raise TypeError(f"Runtime(retries={retries!r}): {error}") from None
    if policy is None:
        raise TypeError("Runtime(retries=None): give a count of retries (0 for none) or a Retry")
    return policy


def check_progress(progress: object) -> None:
    if progress is not None and not isinstance(progress, bool):  # "yes" or 0 was taken for its truth
        raise TypeError(f"Runtime(progress={progress!r}) takes True, False or None (a bar when stderr is a terminal)")


def check_hook(name: str, hook: object, method: str, kind: str) -> None:
    if hook is not None and not callable(getattr(hook, method, None)):
        raise TypeError(f"Runtime({name}=...) takes a file path or a {kind}, not {type(hook).__name__}")


def refuse_in_task(what: str) -> None:
    """Refuse to start or use a runtime on a worker, while it runs a task or imports the
    module of one: a second pool beside the first, outside its limits, its memo and its
    monitoring; and a module that runs a workflow as it is imported would start workers
    that import it in turn."""
    task = running_task()
    if task is not None:
        raise RuntimeError(
            f"{what} inside the app {task}, or in its module as a worker imports it: a task must not "
            "start or use a runtime. Compose instead: pass the Expr to the app as an argument (it gets "
            "the result), or continue with expr.bind(fn), where fn returns the next Expr. A module that "
            "runs a workflow keeps it under if __name__ == '__main__':"
        )


def check_run_timeout(timeout: object) -> None:
    if isinstance(timeout, Expr):  # run(a, b), as if run took several
        raise TypeError(
            "run(expr, timeout): the second argument is the timeout in seconds, not an Expr; "
            "to run several, run plait.gather(a, b)"
        )
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0):
        raise ValueError(f"run(timeout={timeout!r}): a timeout is a number of seconds >= 0, or None")


def not_an_expr(value: object, taker: str = "submit") -> str:
    text = f"{taker} takes an Expr (the result of calling an app), not {type(value).__name__}"
    if isinstance(value, App):  # the app itself, where its call was meant
        return f"{text}: call it, {value.name}(...), to get the Expr of that call"
    if isinstance(value, list | tuple | set) and any(isinstance(item, Expr) for item in value):
        return f"{text} of Exprs: plait.gather(*exprs) is the Expr of all their results, as a list"
    return text
