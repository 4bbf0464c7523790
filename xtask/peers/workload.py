"""The Python peers' side of `cargo xtask compare-peers`: DSPy or TextGrad on the peers' forward
workload (per question 3 solver calls at once, an aggregator call, a formatter call: 5 requests),
`--in-flight` questions at once on threads; or one TextGrad training step (forward, TextLoss,
backward, TGD step) with `--train-step B`.

Prints `ready` once imported, set up and warmed up by one question outside the workload (the
caller times the startup to that line), then one JSON line: requests sent (counted on the HTTP client, or 5 per question), workload wall time, this
process's CPU time during the workload (getrusage), its peak RSS in KiB, and the warm-up's requests. Each framework runs with
its defaults (its response cache on, in a fresh folder the caller gives through the environment).
The endpoint is the caller's fake server on 127.0.0.1 (OPENAI_BASE_URL, OPENAI_API_KEY).
"""

import argparse
import json
import os
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def question(i):
    """The i-th question, the same text as the Rust workload's."""
    s = i % 7
    return (
        f"Question {i}: which choice is the sum of {i} and {s}?\n"
        f"A) {i + s}\nB) {i + s + 1}\nC) {i + s + 2}\nD) {i + s + 3}"
    )


# The warm-up question's index, outside every workload's range.
WARM_UP = 10**9


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Counter:
    """Requests counted where they leave the client (thread-safe)."""

    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def add(self, k=1):
        with self.lock:
            self.n += k


def run_questions(one, questions, in_flight):
    """Run `one(i)` for every question, `in_flight` at once; the first error stops the run."""
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        for result in pool.map(one, range(questions)):
            pass


def dspy_forward(args, counter):
    import dspy

    class Lenient(dspy.ChatAdapter):
        """DSPy's default adapter; a reply without its field markers (the fake server writes plain
        text) is taken whole as the output field instead of a second request through JSONAdapter."""

        def parse(self, signature, completion):
            try:
                return super().parse(signature, completion)
            except Exception:
                return {name: completion for name in signature.output_fields}

    lm = dspy.LM("openai/peer-model", api_base=args.url, api_key=os.environ["OPENAI_API_KEY"], temperature=0.0)
    dspy.configure(lm=lm, adapter=Lenient())

    class Solve(dspy.Signature):
        """Solve the multiple-choice question."""

        question: str = dspy.InputField()
        answer: str = dspy.OutputField()

    class Merge(dspy.Signature):
        """Merge the solvers' answers into the best answer."""

        question: str = dspy.InputField()
        solutions: str = dspy.InputField()
        answer: str = dspy.OutputField()

    class Format(dspy.Signature):
        """Format the final answer; end with 'Answer: X'."""

        question: str = dspy.InputField()
        draft: str = dspy.InputField()
        answer: str = dspy.OutputField()

    class Team(dspy.Module):
        def __init__(self):
            super().__init__()
            # Each solver its own instructions (as the other frameworks' solvers have their own
            # roles), so no two requests of a question are the same.
            self.solvers = [
                dspy.Predict(Solve.with_instructions(f"You are solver {k} of a team. Solve the multiple-choice question."))
                for k in (1, 2, 3)
            ]
            self.merge = dspy.Predict(Merge)
            self.format = dspy.Predict(Format)
            self.pool = ThreadPoolExecutor(max_workers=3 * args.in_flight)

        def forward(self, question):
            futures = [self.pool.submit(s, question=question) for s in self.solvers]
            answers = [f.result().answer for f in futures]
            solutions = "\n".join(f"[{k + 1}] {a}" for k, a in enumerate(answers))
            merged = self.merge(question=question, solutions=solutions).answer
            return self.format(question=question, draft=merged)

    team = Team()

    def one(i):
        team(question=question(i))
        counter.add(5)

    return one, lambda: run_questions(one, args.questions, args.in_flight)


def textgrad_engine(counter):
    import httpx
    import openai
    import textgrad as tg
    from textgrad.engine.openai import ChatOpenAI

    engine = ChatOpenAI(model_string="peer-model")
    # The same client TextGrad makes (OPENAI_BASE_URL, OPENAI_API_KEY), with a hook counting requests.
    engine.client = openai.OpenAI(
        http_client=openai.DefaultHttpxClient(event_hooks={"request": [lambda request: counter.add()]})
    )
    tg.set_backward_engine(engine, override=True)
    return tg, engine


def textgrad_team(tg, engine):
    def prompt(text, role):
        return tg.Variable(text, requires_grad=True, role_description=role)

    solvers = [tg.BlackboxLLM(engine, prompt(f"You are solver {k} of a team.", f"system prompt of solver {k}")) for k in (1, 2, 3)]
    merge = tg.BlackboxLLM(engine, prompt("You merge the solvers' answers.", "system prompt of the aggregator"))
    fmt = tg.BlackboxLLM(engine, prompt("You format the final answer; end with 'Answer: X'.", "system prompt of the formatter"))
    return solvers, merge, fmt


def textgrad_forward_one(tg, team, pool, i):
    solvers, merge, fmt = team
    q = tg.Variable(question(i), requires_grad=False, role_description="the question")
    answers = list(pool.map(lambda s: s(q), solvers))
    merged = merge(tg.sum([q, *answers]))
    return fmt(tg.sum([q, merged]))


def textgrad_forward(args, counter):
    tg, engine = textgrad_engine(counter)
    team = textgrad_team(tg, engine)
    pool = ThreadPoolExecutor(max_workers=3 * args.in_flight)

    def one(i):
        textgrad_forward_one(tg, team, pool, i)

    return one, lambda: run_questions(one, args.questions, args.in_flight)


def textgrad_train_step(args, counter):
    """One step: forward the batch, a TextLoss per answer, their sum's backward, a TGD step per
    parameter. The fake server's replies lack TGD's <IMPROVED_VARIABLE> tags, so each parameter's
    update is made (its request sent) and its parse failure counted, not raised."""
    tg, engine = textgrad_engine(counter)
    team = textgrad_team(tg, engine)
    pool = ThreadPoolExecutor(max_workers=3 * args.in_flight)
    loss_fn = tg.TextLoss("Evaluate the final answer: the right choice is B. Be concise.")
    parameters = [p for s in team[0] for p in s.parameters()] + team[1].parameters() + team[2].parameters()

    def step():
        with ThreadPoolExecutor(max_workers=args.in_flight) as outer:
            outputs = list(outer.map(lambda i: textgrad_forward_one(tg, team, pool, i), range(args.train_step)))
        losses = [loss_fn(o) for o in outputs]
        total = tg.sum(losses)
        total.backward()
        failed = 0
        for p in parameters:
            try:
                tg.TGD(parameters=[p]).step()
            except IndexError:
                failed += 1
        print(f"TGD updates without tags: {failed} of {len(parameters)}", file=sys.stderr)

    return lambda i: textgrad_forward_one(tg, team, pool, i), step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=["dspy", "textgrad"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--train-step", type=int)
    args = parser.parse_args()
    os.environ["OPENAI_BASE_URL"] = args.url
    counter = Counter()
    if args.train_step:
        if args.framework != "textgrad":
            sys.exit("--train-step runs on TextGrad")
        one, work = textgrad_train_step(args, counter)
    elif args.framework == "dspy":
        one, work = dspy_forward(args, counter)
    else:
        one, work = textgrad_forward(args, counter)
    # A first question outside the workload's (lazy imports and connections happen here).
    one(WARM_UP)
    warmup, counter.n = counter.n, 0
    print("ready", flush=True)
    started, cpu = time.monotonic(), cpu_seconds()
    work()
    wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"requests": counter.n, "warmup_requests": warmup, "wall_s": wall, "cpu_s": cpu, "max_rss_kb": peak}
    print(json.dumps(result), flush=True)
    # Worker threads of the frameworks may linger: leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    main()
