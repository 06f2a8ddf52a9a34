"""The execution critic: a model that predicts P(pass | problem, program) before the program
runs, trained on what the executor already judged.

Data: trajectory stores (``rlce/trajectories.py``) of ``rlce train`` and ``rlce eval`` runs.
Each executed sample is an example: the problem's prompt and the judged program, labelled 1
when the program passed every test it was judged on (its reward tests and held-out ones).
Duplicates (one problem, one program) count once. Problems, not samples, are split between
training and held-out (``critic.heldout_fraction``, by a hash of the problem id), so the
figures say how the critic does on problems it never saw.

Model: a transformer backbone (``critic.backbone``; default the policy's own model) read
frozen, each example pooled into one vector (the last token's final hidden state beside the
mean over its tokens), and a small head trained on those vectors with binary cross-entropy.
Training the whole backbone does not fit this project's CPU default (one forward pass of
SmolLM2-135M takes about 0.6 s per example here); a frozen backbone costs one pass per example.

A critic is a folder: the backbone as a Hugging Face model (``config.json``, safetensors), its
tokenizer, the head (``critic_head.safetensors``) and ``critic.json`` (how it was made, the
problems it trained on, its held-out figures). ``rlce critic train`` writes one;
``rlce critic eval`` scores a critic on stores."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CRITIC_FILE = "critic.json"
HEAD_FILE = "critic_head.safetensors"
REQUIRED = ("problem", "prompt", "program", "status")


class CriticError(ValueError):
    """Bad input to the critic (a store without verdicts, a folder that is not a critic, a
    tokenizer that does not match its model); the message names the thing."""


@dataclass(frozen=True)
class Example:
    problem: str
    language: str
    prompt: str
    program: str
    passed: bool


# -- data -----------------------------------------------------------------------------------

def store_files(path: str | Path) -> list[Path]:
    """The Parquet shards of a trajectory store given as a run folder, its
    ``trajectories`` folder or one Parquet file."""
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    for folder in (p / "trajectories", p):
        shards = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
        if shards:
            return shards
    if not p.exists():
        raise CriticError(f"critic.stores: {path} does not exist")
    raise CriticError(f"critic.stores: {path} holds no trajectory store (no part-*.parquet "
                      "in it or in its trajectories folder)")


def load_examples(paths: list[str], sources: tuple[str, ...] = ("train",)
                  ) -> tuple[list[Example], dict[str, int]]:
    """The examples of every store, each (problem, program) once, and what was read:
    ``rows``, ``no_verdict`` (rows without a verdict: no status, or not executed because a
    critic pre-screened them), ``other_source`` (rows of a source not in ``sources``, e.g.
    a training run's evaluations, which may be of an evaluation set), ``duplicates``.
    ``sources``: the stores' ``source`` prefixes to read (``train``, ``eval``)."""
    import pyarrow.parquet as pq

    if not paths:
        raise CriticError("critic.stores is empty: give run folders or trajectory stores "
                          "(critic.stores=[runs/<time>,...])")
    seen: dict[tuple[str, str], Example] = {}
    counts = {"rows": 0, "no_verdict": 0, "other_source": 0, "duplicates": 0}
    for path in paths:
        for shard in store_files(path):
            table = pq.read_table(shard)
            missing = [c for c in REQUIRED if c not in table.column_names]
            if missing:
                raise CriticError(f"{shard}: a trajectory store without "
                                  f"{', '.join(missing)}: it holds no verdicts to learn from")
            for r in table.to_pylist():
                counts["rows"] += 1
                if not str(r.get("source") or "train").startswith(tuple(sources)):
                    counts["other_source"] += 1
                    continue
                if not r.get("status") or r.get("program") is None or r.get("prescreened"):
                    counts["no_verdict"] += 1
                    continue
                held_ok = (r.get("heldout_passed") or 0) >= (r.get("heldout_total") or 0)
                ex = Example(r["problem"], r.get("language") or "python", r["prompt"] or "",
                             r["program"], r["status"] == "passed" and held_ok)
                key = (ex.problem, ex.program)
                if key in seen:
                    counts["duplicates"] += 1
                    continue
                seen[key] = ex
    if not seen:
        raise CriticError(f"critic.stores={list(paths)}: no executed sample with a verdict "
                          f"({counts['rows']} rows, {counts['no_verdict']} without one)")
    return list(seen.values()), counts


LANGUAGE_PARTS = {"python", "py", "javascript", "js", "go", "rust", "cpp"}


def family(problem: str) -> str:
    """A problem's id without the parts that name a language: one io problem written for
    several languages (``rlce/go/sum-two``, ``rlce/rust/sum-two``; ``synth/io-ab12/cpp``) is
    one family, held out or trained on whole."""
    return "/".join(part for part in problem.split("/") if part not in LANGUAGE_PARTS)


def heldout_problems(problems: set[str], fraction: float, seed: int) -> set[str]:
    """``fraction`` of the problem families (at least one where there are two), chosen by
    a hash of each family and ``seed``; every problem of those families."""
    families = sorted({family(p) for p in problems},
                      key=lambda f: hashlib.sha256(f"{seed}\0{f}".encode()).hexdigest())
    count = min(len(families) - 1, max(1, round(fraction * len(families)))) if fraction else 0
    held = set(families[:count])
    return {p for p in problems if family(p) in held}


def subsample(examples: list[Example], limit: int, seed: int) -> list[Example]:
    """At most ``limit`` examples, the same ones for the same seed."""
    if len(examples) <= limit:
        return examples
    rng = np.random.default_rng(seed)
    keep = sorted(rng.choice(len(examples), size=limit, replace=False))
    return [examples[i] for i in keep]


# -- figures ----------------------------------------------------------------------------------

def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _auroc(p: np.ndarray, y: np.ndarray) -> float:
    pos = int(y.sum())
    neg = len(y) - pos
    return (float((_ranks(p)[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))
            if pos and neg else float("nan"))


def scores(p: np.ndarray, y: np.ndarray, bins: int = 10,
           problems: list[str] | None = None) -> dict[str, float]:
    """How predictions ``p`` (of P(pass)) fit outcomes ``y`` (0/1): AUROC (ties count half),
    expected calibration error over ``bins`` equal-width bins, precision at the highest
    threshold whose recall is at least 0.9, Brier score, log loss, the base rate, and what
    pre-screening would skip and lose (``prescreen_at``). With each example's ``problems``:
    the AUROC within a problem, averaged over the problems with a pass and a failure
    (``within_auroc``, over ``within_problems``), which is what reranking a problem's own
    samples needs: an AUROC across problems can come from telling easy problems from hard
    ones alone."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    n, pos = len(y), int(y.sum())
    out = {"examples": float(n), "positives": float(pos), "base_rate": pos / n if n else 0.0,
           "brier": float(np.mean((p - y) ** 2)) if n else 0.0,
           "log_loss": float(-np.mean(y * np.log(np.clip(p, 1e-7, 1))
                                      + (1 - y) * np.log(np.clip(1 - p, 1e-7, 1))))
           if n else 0.0}
    out["auroc"] = _auroc(p, y)
    if problems is not None:
        ids = np.asarray(problems)
        within = [_auroc(p[ids == q], y[ids == q]) for q in np.unique(ids)]
        within = [a for a in within if not math.isnan(a)]
        out["within_problems"] = float(len(within))
        out["within_auroc"] = float(np.mean(within)) if within else float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    out["ece"] = float(sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).sum()
                           for b in range(bins) if (which == b).any()) / n) if n else 0.0
    if pos:
        order = np.argsort(-p, kind="mergesort")
        tp = np.cumsum(y[order])
        k = int(np.argmax(tp >= math.ceil(0.9 * pos)))
        while k + 1 < n and p[order[k + 1]] == p[order[k]]:  # a threshold takes its ties
            k += 1
        out["precision_at_90_recall"] = float(tp[k] / (k + 1))
        out["threshold_at_90_recall"] = float(p[order[k]])
    else:
        out["precision_at_90_recall"] = out["threshold_at_90_recall"] = float("nan")
    for tau in PRESCREEN_TAUS:
        out.update(prescreen_at(p, y, tau))
    return out


# the thresholds at which figures report what pre-screening would save and lose
PRESCREEN_TAUS = (0.02, 0.05, 0.1, 0.2)


def prescreen_at(p: np.ndarray, y: np.ndarray, tau: float) -> dict[str, float]:
    """Pre-screening at ``tau`` (``critic.prescreen_tau``) on predictions ``p`` with
    outcomes ``y``: the share of executions it would skip (rated below ``tau``) and the
    share of the passes among them (NaN without a pass)."""
    below = np.asarray(p, dtype=float) < tau
    y = np.asarray(y, dtype=float)
    return {f"saved@{tau:g}": float(below.mean()) if len(y) else 0.0,
            f"lost@{tau:g}": float(y[below].sum() / y.sum()) if y.sum() else float("nan")}


# -- the model -------------------------------------------------------------------------------

def encode(tokenizer: Any, ex: Example, max_len: int) -> list[int]:
    """The example's tokens: the problem, then the program in a fenced block. The program
    keeps up to all but 32 of ``max_len`` tokens; the prompt is cut to what is left."""
    head = tokenizer.encode(f"{ex.prompt}\n\n```{ex.language}\n", add_special_tokens=False)
    body = tokenizer.encode(f"{ex.program}\n```", add_special_tokens=False)
    body = body[:max(1, max_len - 32)]
    return head[:max(0, max_len - len(body))] + body


class Backbone:
    """A frozen transformer that turns examples into vectors (the last token's final hidden
    state and the mean over the tokens, side by side)."""

    def __init__(self, path: str, max_len: int, batch_size: int) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        self.path, self.max_len, self.batch_size = path, max_len, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        vocab = len(self.tokenizer)
        rows = self.model.get_input_embeddings().num_embeddings
        if vocab > rows:
            raise CriticError(f"{path}: its tokenizer has {vocab} tokens but the model's "
                              f"embeddings hold {rows}: the tokenizer is not this model's")
        self.width = 2 * self.model.config.hidden_size

    def features(self, examples: list[Example], progress: bool = False) -> np.ndarray:
        import torch
        from tqdm import tqdm

        ids = [encode(self.tokenizer, ex, self.max_len) for ex in examples]
        out = np.zeros((len(ids), self.width), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # little padding
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        with torch.inference_mode():
            for batch in tqdm(batches, desc="critic features", unit="batch",
                              disable=not progress):
                width = max(len(ids[i]) for i in batch)
                x = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    x[row, :len(ids[i])] = torch.tensor(ids[i])
                    mask[row, :len(ids[i])] = 1
                h = self.model(input_ids=x, attention_mask=mask).last_hidden_state
                last = h[torch.arange(len(batch)), mask.sum(1) - 1]
                mean = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                out[batch] = torch.cat([last, mean], dim=1).numpy()
        return out


def make_head(width: int, kind: str, hidden: int = 64) -> Any:
    """The head: features standardized (with the training set's mean and spread), then a
    linear layer (``linear``) or one hidden layer of ``hidden`` units (``mlp``) to a logit."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(width))
            self.register_buffer("scale", torch.ones(width))
            self.net = (torch.nn.Linear(width, 1) if kind == "linear" else
                        torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.GELU(),
                                            torch.nn.Linear(hidden, 1)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net((x - self.mean) / self.scale).squeeze(-1)

    return Head()


def fit_head(x: np.ndarray, y: np.ndarray, kind: str, epochs: int, lr: float, l2: float,
             seed: int) -> Any:
    """A head fitted with binary cross-entropy plus ``l2`` times its squared weights (full
    batch, Adam)."""
    import torch

    torch.manual_seed(seed)
    head = make_head(x.shape[1], kind)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    head.mean.copy_(xt.mean(0))
    head.scale.copy_(xt.std(0).clamp_min(1e-6))
    weights = [p for n, p in head.net.named_parameters() if n.endswith("weight")]
    opt = torch.optim.Adam(head.net.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(head(xt), yt) + l2 * sum((w ** 2).sum() for w in weights)
        loss.backward()
        opt.step()
    return head.eval()


HEADS = ("linear", "mlp")
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def select_head(x: np.ndarray, y: np.ndarray, problems: list[str], cfg: Any
                ) -> tuple[str, float, list[dict[str, Any]]]:
    """The head kind and L2 strength with the lowest log loss on a quarter of the training
    problems when fitted on the rest (the held-out problems are never looked at): those
    given in ``cfg`` (``critic.head``, ``critic.l2``), or every one of the grid where they
    are ``auto``/null. Returns the choice and each candidate's validation figures."""
    kinds = HEADS if cfg.head == "auto" else (cfg.head,)
    l2s = L2_GRID if cfg.l2 is None else (cfg.l2,)
    if len(kinds) * len(l2s) == 1:
        return kinds[0], l2s[0], []
    val = heldout_problems(set(problems), 0.25, cfg.seed + 1)
    inner = np.array([p in val for p in problems])
    if inner.all() or not inner.any() or len(set(y[~inner])) < 2:
        return kinds[0], l2s[-1], []  # too little to choose with: the simplest, strongest
    tried = []
    for kind in kinds:
        for l2 in l2s:
            head = fit_head(x[~inner], y[~inner], kind, cfg.epochs, cfg.lr, l2, cfg.seed)
            s = scores(predict(head, x[inner]), y[inner])
            tried.append({"head": kind, "l2": l2, "log_loss": s["log_loss"],
                          "auroc": s["auroc"]})
    best = min(tried, key=lambda t: t["log_loss"])
    return best["head"], best["l2"], tried


def predict(head: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.sigmoid(head(torch.from_numpy(x))).numpy().astype(float)


class Critic:
    """A critic folder, loaded: ``predict(examples)`` gives each one's P(pass)."""

    def __init__(self, folder: str | Path, batch_size: int | None = None) -> None:
        from safetensors.torch import load_file

        self.folder = Path(folder).expanduser()
        meta = self.folder / CRITIC_FILE
        if not meta.is_file() or not (self.folder / HEAD_FILE).is_file():
            raise CriticError(f"critic.path={folder}: not a critic (no {CRITIC_FILE} and "
                              f"{HEAD_FILE}; rlce critic train writes one)")
        self.info = json.loads(meta.read_text())
        self.backbone = Backbone(str(self.folder), self.info["max_len"],
                                 batch_size or self.info["batch_size"])
        if self.backbone.width != self.info["width"]:
            raise CriticError(f"critic.path={folder}: its head reads {self.info['width']} "
                              f"features but its model gives {self.backbone.width}")
        state = load_file(str(self.folder / HEAD_FILE))
        self.head = make_head(self.info["width"], self.info["head"])
        self.head.load_state_dict(state)
        self.head.eval()

    def predict(self, examples: list[Example], progress: bool = False) -> np.ndarray:
        return predict(self.head, self.backbone.features(examples, progress))


def save(folder: Path, backbone: Backbone, head: Any, info: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    backbone.model.save_pretrained(folder)
    backbone.tokenizer.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()},
              str(folder / HEAD_FILE))
    (folder / CRITIC_FILE).write_text(json.dumps(info, indent=1))


# -- the commands ----------------------------------------------------------------------------

def _show(name: str, s: dict[str, float]) -> str:
    return (f"{name}: {int(s['examples'])} examples ({int(s['positives'])} passed, base rate "
            f"{s['base_rate']:.3f}): AUROC {s['auroc']:.3f}, ECE {s['ece']:.3f}, precision at "
            f"90% recall {s['precision_at_90_recall']:.3f} (base rate {s['base_rate']:.3f}), "
            f"Brier {s['brier']:.3f}"
            + (f"; within a problem AUROC {s['within_auroc']:.3f} (over "
               f"{int(s['within_problems'])} problems with a pass and a failure)"
               if "within_auroc" in s else "")
            + "\n  pre-screening would skip / lose of the passes: "
            + ", ".join(f"tau {t:g}: {s[f'saved@{t:g}']:.1%} / {s[f'lost@{t:g}']:.1%}"
                        for t in PRESCREEN_TAUS))


def train_critic(cfg: Any, run_dir: Path) -> dict[str, Any]:
    """``rlce critic train``: features of the stores' examples, a head fitted on the
    training problems, figures on the held-out ones, the critic in ``<run>/critic``."""
    from rlce.core.models import resolve_model

    c = cfg.critic
    t0 = time.perf_counter()
    examples, counts = load_examples(list(c.stores), tuple(c.sources))
    problems = {ex.problem for ex in examples}
    held = heldout_problems(problems, c.heldout_fraction, c.seed)
    train = subsample([ex for ex in examples if ex.problem not in held], c.max_examples, c.seed)
    test = subsample([ex for ex in examples if ex.problem in held], c.max_examples, c.seed)
    y_train = np.array([ex.passed for ex in train], dtype=float)
    if y_train.min(initial=1) == y_train.max(initial=0):
        raise CriticError(f"critic.stores: every training example is "
                          f"{'a pass' if y_train.max(initial=0) else 'a failure'}: nothing "
                          "to tell apart")
    print(f"critic: {len(examples)} examples of {len(problems)} problems from "
          f"{len(c.stores)} store(s) ({counts['rows']} rows; left out: {counts['duplicates']} "
          f"duplicates, {counts['no_verdict']} without a verdict, {counts['other_source']} "
          f"not from {'/'.join(c.sources)}); training on "
          f"{len(train)} of {len(problems) - len(held)} problems, holding out {len(test)} of "
          f"{len(held)}", flush=True)
    backbone_path = resolve_model(c.backbone or cfg.model.name)
    backbone = Backbone(backbone_path, c.max_len, c.batch_size)
    x_train = backbone.features(train, cfg.logging.progress)
    x_test = backbone.features(test, cfg.logging.progress)
    feature_s = time.perf_counter() - t0
    run_dir.mkdir(parents=True, exist_ok=True)  # the backbone's reading, for other heads
    np.savez_compressed(run_dir / "features.npz", x_train=x_train, x_heldout=x_test,
                        y_train=np.array([ex.passed for ex in train]),
                        y_heldout=np.array([ex.passed for ex in test]),
                        problems_train=np.array([ex.problem for ex in train]),
                        problems_heldout=np.array([ex.problem for ex in test]))
    kind, l2, tried = select_head(x_train, y_train, [ex.problem for ex in train], c)
    head = fit_head(x_train, y_train, kind, c.epochs, c.lr, l2, c.seed)
    y_test = np.array([ex.passed for ex in test], dtype=float)
    figures = {"train": scores(predict(head, x_train), y_train,
                               problems=[ex.problem for ex in train]),
               "heldout": scores(predict(head, x_test), y_test,
                                 problems=[ex.problem for ex in test]) if len(test) else {}}
    info = {"backbone": c.backbone or cfg.model.name, "max_len": c.max_len,
            "batch_size": c.batch_size, "head": kind, "l2": l2, "selection": tried,
            "width": backbone.width,
            "stores": [str(s) for s in c.stores], "seed": c.seed,
            "trained_on": sorted(problems - held), "heldout": sorted(held),
            "examples": {"train": len(train), "heldout": len(test), **counts},
            "figures": figures, "seconds": {"features": feature_s,
                                            "total": time.perf_counter() - t0}}
    folder = run_dir / "critic"
    save(folder, backbone, head, info)
    if tried:
        print(f"head: {kind}, l2 {l2:g} (lowest validation log loss of {len(tried)} tried on "
              "a quarter of the training problems)")
    print(_show("training problems", figures["train"]))
    if figures["heldout"]:
        print(_show("held-out problems", figures["heldout"]))
    print(f"critic: {folder} ({time.perf_counter() - t0:.0f} s, {feature_s:.0f} s of it "
          f"reading {len(train) + len(test)} examples with the backbone)")
    return {"critic": str(folder), **figures}


def eval_critic(cfg: Any, run_dir: Path) -> dict[str, Any]:
    """``rlce critic eval``: a critic's figures on the stores' examples, on the problems it
    did not train on (and, apart, on those it did)."""
    c = cfg.critic
    if not c.path:
        raise CriticError("rlce critic eval needs critic.path=<a critic folder>")
    critic = Critic(c.path, c.batch_size)
    examples, _ = load_examples(list(c.stores), tuple(c.sources))
    seen = set(critic.info["trained_on"])
    groups = {"unseen problems": [ex for ex in examples if ex.problem not in seen],
              "problems it trained on": [ex for ex in examples if ex.problem in seen]}
    out: dict[str, Any] = {"critic": str(critic.folder)}
    for name, exs in groups.items():
        exs = subsample(exs, c.max_examples, c.seed)
        if not exs:
            print(f"{name}: none")
            continue
        s = scores(critic.predict(exs, cfg.logging.progress),
                   np.array([ex.passed for ex in exs], dtype=float),
                   problems=[ex.problem for ex in exs])
        out[name] = s
        print(_show(name, s))
    (run_dir / "critic-eval.json").parent.mkdir(parents=True, exist_ok=True)
    (run_dir / "critic-eval.json").write_text(json.dumps(out, indent=1))
    return out


def example_of(record: dict[str, Any]) -> Example:
    """An executed sample's record (the controller's) as the critic reads it."""
    return Example(record["problem"], record.get("language") or "python",
                   record.get("prompt") or "", record.get("program") or "",
                   record.get("status") == "passed")


