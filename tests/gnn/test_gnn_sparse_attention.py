"""gnn.models.sparse_attention: the sparse kernels and the HGT layer against dense references."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.models.sparse_attention import (
    Pattern,
    RelationAttention,
    aggregate,
    build_blocks,
    sddmm,
    spmm,
)


@pytest.fixture
def pattern():
    src = torch.tensor([0, 1, 2, 3, 4, 0, 6, 5, 6])
    dst = torch.tensor([0, 0, 1, 1, 2, 3, 3, 4, 0])
    return Pattern.from_edges(dst, src, 6, 7), src, dst  # row 5: no edges


def test_kernels_match_dense_and_their_gradients_check(pattern):
    p, src, dst = pattern
    a = torch.randn(6, 3, dtype=torch.double, requires_grad=True)
    b = torch.randn(7, 3, dtype=torch.double, requires_grad=True)
    assert torch.allclose(sddmm(p, a, b), (a @ b.T)[p.row, p.col])
    assert torch.autograd.gradcheck(lambda a, b: sddmm(p, a, b), (a, b))
    vals = torch.randn(src.numel(), dtype=torch.double, requires_grad=True)
    x = torch.randn(7, 4, dtype=torch.double, requires_grad=True)
    dense = torch.zeros(6, 7, dtype=torch.double)
    dense[p.row, p.col] = vals.detach()
    assert torch.allclose(spmm(p, vals, x), dense @ x)
    assert torch.autograd.gradcheck(lambda v, x: spmm(p, v, x), (vals, x))
    assert torch.equal(p.col_t, p.row[p.perm]) and torch.equal(p.col[p.perm].sort().values,
                                                               p.col[p.perm])


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("per_relation", [False, True])
def test_relation_attention_matches_a_dense_hgt(heads, per_relation):
    torch.manual_seed(0)
    n = {"item": 6, "brand": 3}
    rels = [("item", "also_bought", "item"), ("brand", "rev_has_brand", "item"),
            ("item", "rev_also_bought", "item")]
    edges = {rels[0]: torch.tensor([[0, 1, 2, 3, 4, 5, 1], [1, 2, 3, 4, 5, 0, 0]]),
             rels[1]: torch.tensor([[0, 0, 1, 2], [0, 1, 2, 3]]),
             rels[2]: torch.tensor([[1, 2, 3, 4, 5, 0], [0, 1, 2, 3, 4, 5]])}
    att = RelationAttention("item", rels, 8, heads, per_relation).double()
    with torch.no_grad():  # away from the identity initialisation
        for prm in (att.a_rel, att.p_rel, att.w_rel):
            prm.add_(0.3 * torch.randn_like(prm))
    x = {t: torch.randn(k, 8, dtype=torch.double) for t, k in n.items()}
    block = build_blocks(edges, n, rels)["item"]
    weights = att(x, block, "item")
    src = torch.cat([x[r[0]] for r in block.relations])
    got = aggregate(block, weights, src)
    # dense reference: per head, logits on every (item, source) pair, masked to the edges
    d = 8 // heads
    q = att.q(x["item"]).view(-1, heads, d)
    logits, values, weight = [], [], []
    for r in block.relations:
        i = rels.index(r)
        k = torch.einsum("nhd,hde->nhe", att.k[r[0]](x[r[0]]).view(-1, heads, d), att.a_rel[i])
        s = torch.einsum("ihd,jhd->hij", q, k) * att.p_rel[i][:, None, None] / math.sqrt(d)
        mask = torch.zeros(n["item"], n[r[0]], dtype=torch.bool)
        mask[edges[r][1], edges[r][0]] = True
        logits.append(s.masked_fill(~mask, -torch.inf))
        values.append(x[r[0]].view(-1, heads, d))
        weight.append(att.w_rel[i][:, None, None])
    if per_relation:  # softmax within each relation, times the relation's weight
        a = torch.cat([torch.softmax(lg, 2).nan_to_num() * w for lg, w in zip(logits, weight)], 2)
    else:  # HGT: one softmax over every in-edge
        a = torch.softmax(torch.cat(logits, 2), 2).nan_to_num()
    want = torch.einsum("hij,jhd->ihd", a, torch.cat(values)).reshape(n["item"], -1)
    assert torch.allclose(got, want, atol=1e-10)
    # and the gradients flow to the attention parameters
    got.pow(2).sum().backward()
    assert att.q.weight.grad is not None and att.a_rel.grad.abs().sum() > 0


def test_uniform_attention_weighs_each_relation_by_in_degree():
    """The ablation "attention off": no query/key parameters; within relation r every in-edge
    of a node weighs w_r / (its in-edges of r)."""
    rels = [("item", "also_bought", "item"), ("brand", "rev_has_brand", "item")]
    edges = {rels[0]: torch.tensor([[0, 1, 2, 1], [1, 2, 0, 0]]),
             rels[1]: torch.tensor([[0, 1], [0, 0]])}
    n = {"item": 3, "brand": 2}
    att = RelationAttention("item", rels, 4, heads=2, uniform=True)
    assert [name for name, _ in att.named_parameters()] == ["w_rel"]
    with torch.no_grad():
        att.w_rel.copy_(torch.tensor([[2.0, 2.0], [3.0, 3.0]]))
    block = build_blocks(edges, n, rels)["item"]
    x = {t: torch.randn(k, 4) for t, k in n.items()}
    w = att(x, block, "item")
    dense = torch.zeros(3, 5)  # [items, stacked sources: 3 items then 2 brands]
    dense[block.pattern.row, block.pattern.col] = w[:, 0]
    # item 0: two also_bought in-edges (from 1, 2) -> 2 / 2 each; two brands -> 3 / 2 each
    assert dense[0].tolist() == [0.0, 1.0, 1.0, 1.5, 1.5]
    assert dense[1].tolist() == [2.0, 0.0, 0.0, 0.0, 0.0]
    assert torch.equal(w[:, 0], w[:, 1])
    assert "uniform" in repr(att)
