"""Every run summary carries a signed anchor of the audit chain's head: `recon run` prints it,
the sandbox Vault supplies the chain key, and the anchor later catches deleted entries."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from apps.cli.main import main
from recon import audit
from tests.pipeline.conftest import AS_OF, TENANT, Pipeline


def test_a_run_prints_an_anchor_that_later_catches_deleted_entries(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    start = AS_OF - dt.timedelta(days=6)
    code = main(["run", "--tenant", TENANT, "--from", str(start), "--to", str(AS_OF)])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("audit anchor: ")]
    assert len(lines) == 1, out
    printed = json.loads(lines[0].removeprefix("audit anchor: "))
    anchor = audit.Anchor.from_dict(printed)
    # the key is the one the sandbox Vault holds for this world, not a development fallback
    sandbox_key = audit.ChainKey.from_secret(pipeline.sandbox.credentials.audit_chain_key)
    assert anchor.key_id == sandbox_key.key_id
    with pipeline.engine.connect() as conn:
        head = conn.execute(text("SELECT max(seq) FROM audit_log")).scalar_one()
    assert anchor.seq == head

    anchor_file = tmp_path / "run.anchor.json"
    anchor_file.write_text(json.dumps(printed))
    assert main(["audit", "verify", "--anchor", str(anchor_file)]) == 0
    capsys.readouterr()
    with pipeline.engine.begin() as conn:  # the owner removes the run's newest entry
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        conn.execute(text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": head})
    assert main(["audit", "verify"]) == 0  # the shorter chain verifies on its own
    assert main(["audit", "verify", "--anchor", str(anchor_file)]) == 7
    assert "newer entries were deleted" in capsys.readouterr().err
