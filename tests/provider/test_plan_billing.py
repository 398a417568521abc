"""`plan` prices a plan change with billing's schedule, and shows it per tenant."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from hosting.billing.subscriptions import sync
from hosting.cli.context import App
from hosting.cli.deploy_commands import _attach_proration
from hosting.cli.plan_output import plan_text
from hosting.provider.changes import report
from hosting.spec import load

REPO = Path(__file__).resolve().parents[2]


def test_upgrade_mid_period_is_prorated_like_the_invoice(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    file = tmp_path / "hosting.yaml"
    file.write_text((REPO / "hosting.yaml").read_text())
    app = App(file=str(file), state_dir_option=str(tmp_path / "state"))
    sync(app.store_path, load(file), date(2026, 11, 3))

    # acme moves from starter to pro on 2026-11-25, inside its period 11-03 → 12-03 (30 days).
    file.write_text(file.read_text().replace("    plan: starter\n", "    plan: pro\n", 1))
    app = App(file=str(file), state_dir_option=str(tmp_path / "state"))
    rep = report(app.spec, [], {}, None)
    _attach_proration(app, rep, as_of=date(2026, 11, 25))

    acme = next(t for t in rep.tenants if t.tenant == "acme")
    # Without the change: 9.99. With it: starter 22 days = 9.99 × 22/30 = 7.326 → 7.33,
    # pro 8 days = 29.99 × 8/30 = 7.997 → 8.00; 15.33 in all, so the change adds 5.34.
    assert acme.proration.change == "change"
    assert acme.proration.old_base == Decimal("9.99")
    assert acme.proration.new_base == Decimal("15.33")
    assert acme.proration.delta == Decimal("5.34")
    assert "billing: change on 2026-11-25: base charges +$5.34" in plan_text(rep, markdown=False)
    # Tenants whose plan did not change get no billing line.
    assert next(t for t in rep.tenants if t.tenant == "globex").proration is None
