"""Heterogeneous graph-transformer attention (HGT, Hu et al. 2020) on sparse CSR kernels.

Why not PyG's `HGTConv`: its message passing gathers keys, queries and values once per edge
(and again in the backward pass). On the Beauty knowledge graph (~0.8M KG edges) one forward +
backward took ~8 s on one CPU core. Here the logits q_i . k_j are one SDDMM
(`torch.sparse.sampled_addmm`, computed only at the edges) and the weighted sum one SpMM, with
hand-written backward passes that are again an SDDMM and SpMMs over the transposed pattern:
no [E, d] tensor is ever materialised, and a forward + backward over the same graph takes a
fraction of a second.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.utils import softmax

# Sparse CSR kernels (cuSPARSE SpMM / SDDMM) are not guaranteed to have bf16 versions: under
# CUDA autocast (`--device cuda`, bf16) they run in float32 (inputs cast, autocast off inside);
# on CPU these decorators do nothing.
FP32_UNDER_AUTOCAST = torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
BWD_UNDER_AUTOCAST = torch.amp.custom_bwd(device_type="cuda")

EdgeType = tuple[str, str, str]


@dataclass
class Pattern:
    """A sparse [n_dst, n_src] pattern in CSR form, with its transpose as a permutation."""

    rowptr: Tensor
    col: Tensor
    row: Tensor
    perm: Tensor  # positions of the transpose's entries in this pattern's order
    rowptr_t: Tensor
    col_t: Tensor
    shape: tuple[int, int]

    @classmethod
    def from_edges(cls, dst: Tensor, src: Tensor, n_dst: int, n_src: int) -> Pattern:
        order = torch.argsort(dst * n_src + src)
        row, col = dst[order], src[order]
        perm = torch.argsort(col * n_dst + row)
        return cls(_csr_ptr(row, n_dst), col, row, perm, _csr_ptr(col[perm], n_src), row[perm],
                   (n_dst, n_src))

    def matrix(self, values: Tensor) -> Tensor:
        return _csr(self.rowptr, self.col, values, self.shape)

    def matrix_t(self, values: Tensor) -> Tensor:
        return _csr(self.rowptr_t, self.col_t, values[self.perm], self.shape[::-1])

    def to(self, device: torch.device | str) -> Pattern:
        return Pattern(*(getattr(self, f).to(device) for f in
                         ("rowptr", "col", "row", "perm", "rowptr_t", "col_t")), self.shape)


def _csr_ptr(row: Tensor, n: int) -> Tensor:
    return torch.ops.aten._convert_indices_from_coo_to_csr(row, n)


def _csr(rowptr: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(rowptr, col, values, shape, check_invariants=False)


def _sddmm(p: Pattern, a: Tensor, b: Tensor) -> Tensor:
    """(a @ b.T) at the pattern's entries, in CSR order: [E]."""
    pattern = p.matrix(torch.zeros(p.col.numel(), dtype=a.dtype, device=a.device))
    return torch.sparse.sampled_addmm(pattern, a.contiguous(), b.T.contiguous(),
                                      beta=0.0).values()


class _SDDMM(torch.autograd.Function):
    @staticmethod
    @FP32_UNDER_AUTOCAST
    def forward(ctx: Any, a: Tensor, b: Tensor, p: Pattern) -> Tensor:
        ctx.save_for_backward(a, b)
        ctx.p = p
        return _sddmm(p, a, b)

    @staticmethod
    @BWD_UNDER_AUTOCAST
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, Tensor, None]:
        a, b = ctx.saved_tensors
        p = ctx.p
        return torch.sparse.mm(p.matrix(g), b), torch.sparse.mm(p.matrix_t(g), a), None


class _SpMM(torch.autograd.Function):
    @staticmethod
    @FP32_UNDER_AUTOCAST
    def forward(ctx: Any, values: Tensor, x: Tensor, p: Pattern) -> Tensor:
        ctx.save_for_backward(values, x)
        ctx.p = p
        return torch.sparse.mm(p.matrix(values), x)

    @staticmethod
    @BWD_UNDER_AUTOCAST
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, Tensor, None]:
        values, x = ctx.saved_tensors
        p = ctx.p
        g = g.contiguous()
        return _sddmm(p, g, x), torch.sparse.mm(p.matrix_t(values), g), None


def sddmm(p: Pattern, a: Tensor, b: Tensor) -> Tensor:
    return _SDDMM.apply(a, b, p)


def spmm(p: Pattern, values: Tensor, x: Tensor) -> Tensor:
    return _SpMM.apply(values, x, p)


@dataclass
class DstBlock:
    """Every relation that ends in one node type, stacked: column c of the pattern is node
    c - offset[r] of relation r's source type."""

    pattern: Pattern
    relations: list[EdgeType]
    offsets: list[int]
    edge_rel: Tensor  # relation index of each entry (CSR order)
    group_ptr: Tensor  # CSR-style pointer over (row, relation) groups: entries are contiguous

    def to(self, device: torch.device | str) -> DstBlock:
        return DstBlock(self.pattern.to(device), self.relations, self.offsets,
                        self.edge_rel.to(device), self.group_ptr.to(device))


def build_blocks(edge_index: dict[EdgeType, Tensor], num_nodes: dict[str, int],
                 relations: list[EdgeType]) -> dict[str, DstBlock]:
    """One stacked pattern per destination type, over the `relations` present in `edge_index`."""
    blocks = {}
    for dst_t in sorted({et[2] for et in relations}):
        rels = [et for et in relations if et[2] == dst_t and et in edge_index]
        if not rels:
            continue
        offsets, dsts, srcs, kinds, total = [], [], [], [], 0
        for k, et in enumerate(rels):
            ei = edge_index[et]
            offsets.append(total)
            srcs.append(ei[0] + total)
            dsts.append(ei[1])
            kinds.append(torch.full((ei.size(1),), k, dtype=torch.long))
            total += num_nodes[et[0]]
        dst, src, kind = torch.cat(dsts), torch.cat(srcs), torch.cat(kinds)
        p = Pattern.from_edges(dst, src, num_nodes[dst_t], total)
        order = torch.argsort(dst * total + src)
        kind = kind[order]
        # within a row, entries are sorted by column, and relation r's columns all come before
        # relation r + 1's: each (row, relation) group is one contiguous run
        group = p.row * len(rels) + kind
        starts = torch.ones(len(group), dtype=torch.bool)
        starts[1:] = group[1:] != group[:-1]
        group_ptr = torch.cat([torch.nonzero(starts).view(-1), torch.tensor([len(group)])])
        blocks[dst_t] = DstBlock(p, rels, offsets, kind, group_ptr)
    return blocks


class RelationAttention(nn.Module):
    """HGT-style attention weights over the stacked relations of one destination type.

    For an edge j -> i of relation r (j of type src(r), i of the block's type):

        q_i = x_i Q,   k_j^r = x_j K_src(r) A_r
        alpha_ij = softmax over i's in-edges of relation r of mu_r (q_i . k_j^r) / sqrt(d)
        weight_ij = w_r alpha_ij                                          (per head)

    (HGT normalises over all in-edges at once, `per_relation=False`; per relation, a relation
    with 2 neighbours is not drowned by one with 40, and w_r learns how much each relation
    counts.) The weights are the values of the block's sparse pattern: `spmm(pattern, w, x)`
    aggregates any source features with them.

    `uniform=True` (the ablation "attention off"): alpha_ij = 1 / (i's in-edges of relation r),
    weight_ij = w_r alpha_ij; the module then has no query, key or relation-matrix parameters,
    only the relation weights w_r.
    """

    def __init__(self, dst_type: str, relations: list[EdgeType], dim: int, heads: int = 1,
                 per_relation: bool = True, uniform: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"'dim' (got {dim}) must be divisible by the number of heads "
                             f"(got {heads})")
        self.dim, self.heads, self.d = dim, heads, dim // heads
        self.relations = [tuple(r) for r in relations]
        self.per_relation = per_relation
        self.uniform = uniform
        if not uniform:
            src_types = sorted({r[0] for r in self.relations})
            self.q = nn.Linear(dim, dim, bias=False)
            self.k = nn.ModuleDict({t: nn.Linear(dim, dim, bias=False) for t in src_types})
            self.a_rel = nn.Parameter(torch.empty(len(relations), heads, self.d, self.d))
            self.p_rel = nn.Parameter(torch.empty(len(relations), heads))
        self.w_rel = nn.Parameter(torch.empty(len(relations), heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if not self.uniform:
                self.q.reset_parameters()
                for lin in self.k.values():
                    lin.reset_parameters()
                self.a_rel.copy_(torch.eye(self.d).expand_as(self.a_rel))
                self.p_rel.fill_(1.0)
            self.w_rel.fill_(1.0 / len(self.relations))

    def forward(self, x: dict[str, Tensor], block: DstBlock, dst_type: str) -> Tensor:
        """[E, heads] edge weights in the block's CSR order."""
        h, d = self.heads, self.d
        idx = torch.tensor([self.relations.index(r) for r in block.relations])
        if self.uniform:
            rel = idx.to(self.w_rel.device)[block.edge_rel]
            ptr = block.group_ptr if self.per_relation else block.pattern.rowptr
            zeros = torch.zeros(rel.numel(), device=rel.device, dtype=self.w_rel.dtype)
            alpha = softmax(zeros, ptr=ptr).unsqueeze(1).expand(-1, h)  # 1 / in-degree
            return alpha * self.w_rel[rel] if self.per_relation else alpha
        ks = []
        for r, i in zip(block.relations, idx.tolist()):
            # fold A_r into the key projection (a 64 x 64 product, not an N x 64 one)
            wk = torch.einsum("ihd,hde->ihe", self.k[r[0]].weight.T.view(self.dim, h, d),
                              self.a_rel[i]).reshape(self.dim, self.dim)
            ks.append(x[r[0]] @ wk)
        k = torch.cat(ks)
        q = self.q(x[dst_type])
        rel = idx.to(q.device)[block.edge_rel]
        prior = self.p_rel[rel]  # [E, h]
        p = block.pattern
        ptr = block.group_ptr if self.per_relation else p.rowptr
        out = []
        for j in range(h):
            cols = slice(j * d, (j + 1) * d)
            logits = sddmm(p, q[:, cols], k[:, cols]) * prior[:, j] / math.sqrt(d)
            out.append(softmax(logits, ptr=ptr))
        alpha = torch.stack(out, 1)
        return alpha * self.w_rel[rel] if self.per_relation else alpha

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.dim}, heads={self.heads}, "
                f"relations={len(self.relations)}{', uniform' if self.uniform else ''})")


def aggregate(block: DstBlock, weights: Tensor, src: Tensor) -> Tensor:
    """sum_j weight_ij src_j per head: `weights` [E, heads], `src` [n_src_stacked, dim]."""
    heads = weights.size(1)
    if heads == 1:
        return spmm(block.pattern, weights[:, 0].contiguous(), src)
    d = src.size(1) // heads
    return torch.cat([spmm(block.pattern, weights[:, j].contiguous(),
                           src[:, j * d:(j + 1) * d].contiguous()) for j in range(heads)], 1)
