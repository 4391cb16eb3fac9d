"""The project's PyTorch model of its UNet, and the DDPM pieces the golden files and the race need.

Optional tooling (Debian's python3-torch, run with /usr/bin/python3); nothing in the build or in
`make test` imports it. Two users:
  tests/golden/make_golden.py  writes the golden files the C++ parity tests read, and checks that a
                               file written by the C++ code loads here;
  tools/torch_race.py          times the training and the sampling step for `./apps/bench`.

The network is the one nn/unet.h builds (Ho et al. 2020's UNet, as ported to PyTorch by
pytorch_diffusion, shrunk for MNIST): the same modules in the same order, so the state_dict names
are the C++ parameter names (tests/golden/unet_default_params.txt lists them; `python3
tools/torch_race.py --list-params` prints this side's list in the same format) and a checkpoint's
model tensors load with a strict load_state_dict. Modules are created in the order the C++ code
draws its weights (time embedding, conv_in, encoder, middle, decoder from the lowest resolution up,
norm_out, conv_out; inside a level its ResBlocks, then its attention blocks, then the resampling
conv), so a fixed torch seed always gives the same weights.

Default configuration (1,112,801 parameters; side lengths for 28x28 input):

    t -> sinusoid(32) -> Linear 32->128 -> SiLU -> Linear 128->128 = temb
    conv_in 1->32                                               skips: 32@28
    down.0  ResBlock 32->32,  Downsample                        skips: 32@28, 32@14
    down.1  ResBlock 32->64,  Downsample                        skips: 64@14, 64@7
    down.2  ResBlock 64->64 + attention                         skips: 64@7
    mid     ResBlock, attention, ResBlock at 64@7
    up.2    2 x (ResBlock on cat(h, skip) + attention), Upsample   (pops 64@7, 64@7)
    up.1    2 x ResBlock on cat(h, skip), Upsample                 (pops 64@14, 32@14)
    up.0    2 x ResBlock on cat(h, skip)                           (pops 32@28, 32@28)
    norm_out, SiLU, conv_out 32->1

The network's time input is the 0-based index t - 1 (0..T-1) of the paper's 1-based t, as in the
C++ UNet (docs/conventions.md).
"""

import math
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

GROUPS = 8        # GroupNorm groups everywhere
GN_EPS = 1e-5


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUPS, channels, eps=GN_EPS)


def sinusoid(t: torch.Tensor, width: int) -> torch.Tensor:
    """[N] timesteps -> [N, width]: sin(t w_k) for k < width/2, then cos(t w_k), with
    w_k = 10000^(-k / (width/2 - 1)) (the transformer position code, as the DDPM UNet uses it)."""
    half = width // 2
    k = torch.arange(half, dtype=torch.float32)
    w = torch.exp(k * (-math.log(10000.0) / (half - 1)))
    phase = t.to(torch.float32).unsqueeze(1) * w.unsqueeze(0)
    return torch.cat((phase.sin(), phase.cos()), dim=1)


class TimeEmbedding(nn.Module):
    def __init__(self, width: int, out_width: int):
        super().__init__()
        self.width = width
        self.dense = nn.ModuleList((nn.Linear(width, out_width), nn.Linear(out_width, out_width)))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.dense[1](F.silu(self.dense[0](sinusoid(t, self.width))))


class ResBlock(nn.Module):
    """out = shortcut(x) + conv2(dropout(SiLU(GN(conv1(SiLU(GN(x))) + temb_proj(SiLU(temb))))));
    the shortcut is a 1x1 conv when the channel count changes, else the identity."""

    def __init__(self, cin: int, cout: int, temb_width: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb_width, cout)
        self.norm2 = norm(cout)
        self.dropout = nn.Dropout(dropout)  # no parameters: names and weights do not depend on it
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)
        else:
            self.nin_shortcut = None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb)).unsqueeze(-1).unsqueeze(-1)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + (x if self.nin_shortcut is None else self.nin_shortcut(x))


class AttnBlock(nn.Module):
    """x + proj_out(attention): one head over the H*W positions of GN(x), queries, keys and values
    from 1x1 convs, weights softmax_j(q_i . k_j / sqrt(C))."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, height, width = x.shape
        h = self.norm(x)
        q = self.q(h).flatten(2)                              # [n, c, positions]
        k = self.k(h).flatten(2)
        v = self.v(h).flatten(2)
        logits = torch.bmm(q.transpose(1, 2), k) * c ** -0.5  # [n, i, j] = q_i . k_j / sqrt(c)
        weights = logits.softmax(dim=-1)                      # over the keys j
        mixed = torch.bmm(v, weights.transpose(1, 2))         # [n, c, i] = sum_j weights_ij v_j
        return x + self.proj_out(mixed.reshape(n, c, height, width))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Level(nn.Module):
    """One resolution of the encoder or the decoder. `block_inputs` are the input channel counts of
    its ResBlocks (for the decoder: h's channels plus the skip's); every block outputs `cout`.
    Attention blocks and the resampling conv exist only where configured, so their names appear
    only there (attn.0, downsample.conv, upsample.conv)."""

    def __init__(self, block_inputs: Sequence[int], cout: int, temb_width: int, attention: bool,
                 resample, dropout: float):
        super().__init__()
        self.block = nn.ModuleList(ResBlock(c, cout, temb_width, dropout) for c in block_inputs)
        if attention:
            self.attn = nn.ModuleList(AttnBlock(cout) for _ in block_inputs)
        else:
            self.attn = None
        if resample is Downsample:
            self.downsample = Downsample(cout)
        elif resample is Upsample:
            self.upsample = Upsample(cout)

    def blocks(self):
        for i, block in enumerate(self.block):
            yield block, (self.attn[i] if self.attn is not None else None)


class Middle(nn.Module):
    def __init__(self, channels: int, temb_width: int, dropout: float):
        super().__init__()
        self.block_1 = ResBlock(channels, channels, temb_width, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResBlock(channels, channels, temb_width, dropout)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h, temb)), temb)


class UNet(nn.Module):
    """Arguments and defaults as nn/unet.h's UNetConfig (the JSON keys of a checkpoint's
    __metadata__.unet_config): learn_variance doubles the output channels (eps and the variance
    interpolation v), dropout acts before each ResBlock's second conv in training mode."""

    def __init__(self, in_ch: int = 1, ch: int = 32, ch_mult: Sequence[int] = (1, 2, 2),
                 num_res_blocks: int = 1, attn_resolutions: Sequence[int] = (7,), resolution: int = 28,
                 dropout: float = 0.0, learn_variance: bool = False):
        super().__init__()
        temb_width = 4 * ch
        self.temb = TimeEmbedding(ch, temb_width)
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)

        skip_channels: List[int] = [ch]  # what the encoder pushes, in order
        side, c = resolution, ch
        encoder = []
        for i, mult in enumerate(ch_mult):
            cout = ch * mult
            last = i + 1 == len(ch_mult)
            inputs = [c] + [cout] * (num_res_blocks - 1)
            encoder.append(Level(inputs, cout, temb_width, side in attn_resolutions,
                                 None if last else Downsample, dropout))
            skip_channels += [cout] * (num_res_blocks + (0 if last else 1))
            if not last:
                side //= 2
            c = cout
        self.down = nn.ModuleList(encoder)

        self.mid = Middle(c, temb_width, dropout)

        decoder = [None] * len(ch_mult)  # built lowest resolution first, indexed by resolution level
        for i in reversed(range(len(ch_mult))):
            cout = ch * ch_mult[i]
            inputs = []
            for _ in range(num_res_blocks + 1):
                inputs.append(c + skip_channels.pop())
                c = cout
            decoder[i] = Level(inputs, cout, temb_width, side in attn_resolutions,
                               Upsample if i > 0 else None, dropout)
            if i > 0:
                side *= 2
        if skip_channels:
            raise AssertionError(f"unused skip connections: {skip_channels}")
        self.up = nn.ModuleList(decoder)

        self.norm_out = norm(c)
        self.conv_out = nn.Conv2d(c, 2 * in_ch if learn_variance else in_ch, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x [N, in_ch, res, res], t [N] 0-based (the paper's t - 1) -> [N, out channels, res, res]."""
        temb = self.temb(t)
        h = self.conv_in(x)
        skips = [h]
        for level in self.down:
            for block, attn in level.blocks():
                h = block(h, temb)
                if attn is not None:
                    h = attn(h)
                skips.append(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
                skips.append(h)
        h = self.mid(h, temb)
        for level in reversed(self.up):
            for block, attn in level.blocks():
                h = block(torch.cat((h, skips.pop()), dim=1), temb)
                if attn is not None:
                    h = attn(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def unet_from_config(cfg: dict) -> UNet:
    """A UNet from the JSON of __metadata__.unet_config (missing keys keep their defaults)."""
    keys = ("in_ch", "ch", "ch_mult", "num_res_blocks", "attn_resolutions", "resolution", "dropout",
            "learn_variance")
    return UNet(**{k: cfg[k] for k in keys if k in cfg})


def parameter_list(model: nn.Module) -> str:
    """The format of nn/unet.h's format_parameter_list: name padded to 45, the shape as a tuple."""
    lines = [f"{name:45s} {tuple(p.shape)}" for name, p in model.state_dict().items()]
    lines.append(f"total parameters: {sum(p.numel() for p in model.parameters())}")
    return "\n".join(lines) + "\n"


# ---- the diffusion side: schedule constants with 1-based t (index 0 = no noise) ------------------

class Schedule:
    """Linear betas beta_1..beta_T (1e-4 .. 0.02 for T = 1000), computed in float64 like
    ddpm/schedule.cpp, kept as float32 tensors of length T + 1 so that `s.abar[t]` reads as the
    paper's abar_t (docs/equations.md)."""

    def __init__(self, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02):
        self.T = T
        betas = torch.cat((torch.zeros(1, dtype=torch.float64),
                           torch.linspace(beta_1, beta_T, T, dtype=torch.float64)))
        alphas = 1.0 - betas
        abar = torch.cumprod(alphas, 0)                               # abar_0 = 1
        abar_prev = torch.cat((torch.ones(1, dtype=torch.float64), abar[:-1]))
        one_minus = (1.0 - abar).clamp_min(1e-300)                    # index 0 unused
        f32 = lambda a: a.to(torch.float32)                            # noqa: E731
        self.betas = f32(betas)
        self.sqrt_abar = f32(abar.sqrt())                                   # eq. (4) mean
        self.sqrt_one_minus_abar = f32((1.0 - abar).sqrt())                 # eq. (4) std
        self.posterior_mean_coef1 = f32(abar_prev.sqrt() * betas / one_minus)           # eq. (7), x0
        self.posterior_mean_coef2 = f32(alphas.sqrt() * (1.0 - abar_prev) / one_minus)  # eq. (7), x_t
        posterior_variance = (1.0 - abar_prev) / one_minus * betas                      # betatilde_t
        # Fixed large variance sigma_t^2 = beta_t, with betatilde_2 at t = 1 (betatilde_1 = 0).
        large = betas.clone()
        large[1] = posterior_variance[2]
        self.sigma_large = f32(large.sqrt())


def per_image(v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Gathers v[t] for each image and shapes it to broadcast over [N, C, H, W]."""
    return v[t].view(-1, 1, 1, 1)


def q_sample(s: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Eq. (4): x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t 1-based."""
    return per_image(s.sqrt_abar, t) * x0 + per_image(s.sqrt_one_minus_abar, t) * noise


def loss_simple(model: nn.Module, s: Schedule, x0, t, noise) -> torch.Tensor:
    """Eq. (14) with the mean over pixels instead of the sum (ddpm/losses.h)."""
    return F.mse_loss(model(q_sample(s, x0, t, noise), t - 1), noise)


@torch.no_grad()
def reverse_step(model: nn.Module, s: Schedule, x_t: torch.Tensor, t: int, generator=None) -> torch.Tensor:
    """One step of Algorithm 2 as ddpm/sample.cpp takes it: x0_hat from eps (eq. 4 solved for x0),
    clipped to [-1, 1]; the mean is eq. (7)'s mutilde_t(x_t, x0_hat); x_{t-1} = mean + sigma_t z with
    the fixed large variance, and no noise at t = 1."""
    tt = torch.full((x_t.shape[0],), t - 1, dtype=torch.long)
    eps = model(x_t, tt)
    x0_hat = ((x_t - s.sqrt_one_minus_abar[t] * eps) / s.sqrt_abar[t]).clamp(-1.0, 1.0)
    mean = s.posterior_mean_coef1[t] * x0_hat + s.posterior_mean_coef2[t] * x_t
    if t == 1:
        return mean
    z = torch.randn(x_t.shape, generator=generator)
    return mean + s.sigma_large[t] * z


def clip_grad_norm(parameters, max_norm: float) -> float:
    """Global L2 norm clipping as nn/optim.h's clip_grad_norm (scale by max_norm / (norm + 1e-6)
    when the norm exceeds max_norm); returns the norm before clipping."""
    return float(torch.nn.utils.clip_grad_norm_(parameters, max_norm))


class Ema:
    """nn/optim.h's Ema: update n (0-based) uses decay_n = min(decay, (1 + n) / (10 + n))."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.updates = 0
        self.shadow = [p.detach().clone() for p in model.parameters()]
        self.params = list(model.parameters())

    @torch.no_grad()
    def update(self) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for shadow, p in zip(self.shadow, self.params):
            shadow.mul_(d).add_(p.detach(), alpha=1.0 - d)
        self.updates += 1
