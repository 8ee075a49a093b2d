"""The auditor's reconciliation report: built from the books (`build_report`), written signed
as a CSV zip, XLSX or PDF (`write_report`), and checked (`verify_report`)."""

from recon.reports.build import build_report
from recon.reports.verify import VerifyResult, verify_report
from recon.reports.write import WrittenReport, write_report

__all__ = ["VerifyResult", "WrittenReport", "build_report", "verify_report", "write_report"]
