"""Training throughput of our GAN trainer against the pytorch/examples DCGAN loop.

Same Generator/Discriminator classes, same in-memory data, same batch; augmentation off
(the reference has none). The two loops are timed in alternating windows, so load from
other processes hits both alike; each side's figure is the median over windows.

    python benchmarks/train_throughput.py [--ngf 32] [--batch 64] [--steps 6] [--rounds 3]

prints one JSON line: {"ours_ips", "reference_ips", "ratio", ...}.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from engine.models.gan import Discriminator, GanConfig, Generator  # noqa: E402
from engine.training.data import ImageSet  # noqa: E402
from engine.training.gan_trainer import GanTrainConfig, GanTrainer  # noqa: E402


class ReferenceDCGAN:
    """pytorch/examples dcgan/main.py's training loop, written out (BCELoss on a sigmoid D)."""

    def __init__(self, cfg: GanConfig, data: ImageSet, batch: int, device: torch.device) -> None:
        torch.manual_seed(0)
        self.netG = Generator(cfg).to(device)
        self.netD = nn.Sequential(Discriminator(cfg), nn.Sigmoid()).to(device)
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.data, self.batch, self.device, self.nz = data, batch, device, cfg.nz
        self.real_label, self.fake_label = 1.0, 0.0

    def step(self, i: int) -> None:
        idx = torch.randint(len(self.data), (self.batch,))
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        self.netD.zero_grad()
        real_cpu = self.data.as_float(idx, self.device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), self.real_label, dtype=real_cpu.dtype, device=self.device)
        output = self.netD(real_cpu).view(-1)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        noise = torch.randn(batch_size, self.nz, device=self.device)
        fake = self.netG(noise)
        label.fill_(self.fake_label)
        output = self.netD(fake.detach()).view(-1)
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        self.optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        self.netG.zero_grad()
        label.fill_(self.real_label)
        output = self.netD(fake).view(-1)
        errG = self.criterion(output, label)
        errG.backward()
        self.optimizerG.step()


def timed(step, start: int, steps: int, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, start + steps):
        step(i)
    return steps * batch / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=6, help="steps per timed window")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    g = torch.Generator().manual_seed(0)
    data = ImageSet(images=torch.randint(0, 256, (args.images, 4, 64, 64), dtype=torch.uint8, generator=g),
                    captions=["x"] * args.images)
    with tempfile.TemporaryDirectory() as out:
        ours = GanTrainer(GanTrainConfig(out=out, ngf=args.ngf, ndf=args.ngf, batch=args.batch, cond_dim=0,
                                         augment="", device=args.device, progress=False, epochs=1000), data)
        ref = ReferenceDCGAN(ours.model_cfg, data, args.batch, ours.device)
        ours.train_step(0), ours.train_step(1), ref.step(0), ref.step(1)  # warm-up
        ours_ips, ref_ips = [], []
        for r in range(args.rounds):
            ours_ips.append(timed(ours.train_step, 2 + r * args.steps, args.steps, args.batch))
            ref_ips.append(timed(ref.step, 0, args.steps, args.batch))
    o, ref_m = statistics.median(ours_ips), statistics.median(ref_ips)
    print(json.dumps({"ours_ips": round(o, 2), "reference_ips": round(ref_m, 2), "ratio": round(o / ref_m, 3),
                      "ngf": args.ngf, "batch": args.batch, "device": str(ours.device),
                      "threads": torch.get_num_threads(), "windows": args.rounds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
