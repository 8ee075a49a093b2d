"""The ops UI in a real browser: `streamlit run` on a free localhost port over a SQLite database
that a real `recon run` filled from the sandbox providers, driven by Debian's headless Chromium.

A finance user signs in, opens an exception, matches its payment by hand, finds the decision in
the audit log, and downloads the PDF report; the Overview and Exceptions pages are saved as
screenshots under docs/screenshots/. Without Chromium the test fails: `.ci/run` installs it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import Engine, select, update

from recon.db.engine import make_engine
from recon.db.models import Allocation, Invoice, ReconException, Transaction, User
from recon.db.tenancy import admin_session, tenant_session
from recon.money import format_amount
from recon.review.access import Role
from recon.review.users import hash_password
from tests.e2e.helpers import (
    RECON,
    REPO_ROOT,
    TENANT,
    WORLD_END,
    SandboxEnv,
    Service,
    base_env,
    create_tenant_database,
    free_port,
    run_cli,
    wait_until,
)
from tests.people import make_user

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
EMAIL = "finance@e2e.test"
PASSWORD = "a browser's own passphrase"
WINDOW = (WORLD_END - dt.timedelta(days=29), WORLD_END)
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1440,1000",
)  # fmt: skip
WAIT = 120.0  # seconds for a page to render on a loaded machine (not a performance goal)


@dataclass(frozen=True)
class Served:
    url: str
    engine: Engine
    downloads: Path


@pytest.fixture
def served(sandbox_env: SandboxEnv, tmp_path: Path) -> Iterator[Served]:
    """A database reconciled by `recon run`, a finance user, and the UI serving it."""
    database = create_tenant_database(tmp_path / "ui.db", sandbox_env)
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = (
        base_env()
        | {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            # the export's signing key; development lets a variable stand in for Vault
            "RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY": "e2e-export-signing-key-" + "k" * 32,
        }
        | sandbox_env.recon_env(database, tmp_path / "var")
    )
    run_cli(
        [RECON, "run", "--tenant", TENANT, "--from", str(WINDOW[0]), "--to", str(WINDOW[1])],
        env,
        timeout=600,
    )
    engine = make_engine(database)
    make_user(engine, EMAIL, Role.FINANCE, (TENANT,))
    with admin_session(engine) as session:
        session.execute(
            update(User).where(User.email == EMAIL).values(password_hash=hash_password(PASSWORD))
        )
    port = free_port()
    ui = Service(
        "streamlit",
        [str(Path(RECON).with_name("python")), "-m", "streamlit", "run", "ui/app.py",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        env=env,
        cwd=REPO_ROOT,
        log_path=tmp_path / "streamlit.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            "the UI answers its health check",
            lambda: _healthy(url),
            timeout=WAIT,
            diagnostics=ui.log_tail,
        )
        yield Served(url, engine, tmp_path / "downloads")
    finally:
        ui.stop()
        engine.dispose()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def browser(served: Served) -> Iterator[WebDriver]:
    """Headless Chromium from Debian through its chromedriver; fails (not skips) without it."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            f"{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install -y chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={served.downloads.parent / 'chromium-profile'}")
    served.downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(served.downloads),
            "download.prompt_for_download": False,
            "plugins.always_open_pdf_externally": True,
        },
    )
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


# -- page helpers ------------------------------------------------------------------------------


def _wait_text(driver: WebDriver, text: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT, poll_frequency=0.5).until(
        lambda d: text in d.find_element("tag name", "body").text,
        message=f"the page never showed {text!r}",
    )


def _type(driver: WebDriver, label: str, text: str, *, area: bool = False) -> None:
    """Type into the field labelled `label`, waiting for Streamlit to draw it first."""
    from selenium.webdriver.support.ui import WebDriverWait

    tag = "textarea" if area else "input"
    selector = f'{tag}[aria-label="{label}"]'
    field = WebDriverWait(driver, WAIT, poll_frequency=0.5).until(
        lambda d: next(
            (f for f in d.find_elements("css selector", selector) if f.is_displayed()), None
        ),
        message=f"no field {label!r}",
    )
    assert field is not None
    field.clear()
    field.send_keys(text)


def _click(driver: WebDriver, label: str, *, prefix: bool = False) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    test = (
        f'starts-with(normalize-space(.), "{label}")' if prefix else f'normalize-space(.)="{label}"'
    )
    xpath = f"//button[{test}]"
    button = WebDriverWait(driver, WAIT).until(
        lambda d: next((b for b in d.find_elements("xpath", xpath) if b.is_enabled()), None),
        message=f"no button {label!r}",
    )
    assert button is not None
    button.click()


def _wait_charts(driver: WebDriver, count: int) -> None:
    """Wait until `count` Altair charts have drawn (for the screenshot, not as a check)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT, poll_frequency=0.5).until(
        lambda d: (
            len(d.find_elements("css selector", ".vega-embed canvas, .vega-embed svg")) >= count
        ),
        message="the charts never drew",
    )


def _expand(driver: WebDriver, title: str, field: str) -> None:
    """Open the expander `title` until its input `field` can be typed into."""
    from selenium.webdriver.support.ui import WebDriverWait

    def opened(d: WebDriver) -> bool:
        inputs = d.find_elements("css selector", f'input[aria-label="{field}"]')
        if inputs and inputs[0].is_displayed():
            return True
        d.find_element("xpath", f'//summary[contains(., "{title}")]').click()
        return False

    WebDriverWait(driver, WAIT, poll_frequency=1.0).until(opened, message=f"{title} never opened")


def _open(driver: WebDriver, page: str, title: str) -> None:
    link = driver.find_element("css selector", f'[data-testid="stSidebarNav"] a[href$="/{page}"]')
    link.click()
    _wait_text(driver, title)


def _payment_to_match(engine: Engine, exception_id: int) -> tuple[str, str, str]:
    """(transaction ref, invoice id, amount text) a person could allocate for this exception."""
    with tenant_session(engine, TENANT) as session:
        row = session.get(ReconException, exception_id)
        assert row is not None and row.transaction_ref
        source, account, source_id = row.transaction_ref.split(":", 2)
        payment = session.scalars(
            select(Transaction).where(
                Transaction.source == source,
                Transaction.account_ref == account,
                Transaction.source_id == source_id,
            )
        ).one()
        invoice = session.scalars(
            select(Invoice)
            .where(
                Invoice.currency == payment.currency,
                Invoice.status == "Unpaid",
                Invoice.balance_minor > 0,
            )
            .order_by(Invoice.balance_minor.desc())
        ).first()
        assert invoice is not None, "the sandbox world has no unpaid invoice to match by hand"
        amount = min(payment.amount_minor, invoice.balance_minor)
        return row.transaction_ref, invoice.invoice_id, format_amount(amount, payment.currency)


def test_finance_matches_by_hand_in_a_browser(served: Served, browser: WebDriver) -> None:
    driver = browser
    driver.get(served.url)
    _wait_text(driver, "Sign in")
    _type(driver, "Email", EMAIL)
    _type(driver, "Password", PASSWORD)
    _click(driver, "Sign in")
    _wait_text(driver, "Allocated automatically")
    _wait_text(driver, "Money received per source")
    _wait_charts(driver, 3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "overview.png"))

    _open(driver, "exceptions", "Filters and sort")
    # the queue narrowed to payments nobody could place, so the detail has a payment to match
    _expand(driver, "Filters and sort", "Kind")
    _type(driver, "Kind", "unmatched_payment\n")
    _wait_text(driver, "Exception ")
    header = driver.find_element("xpath", '//h2[starts-with(normalize-space(.), "Exception ")]')
    exception_id = int(header.text.split()[1].rstrip(":"))
    driver.save_screenshot(str(SCREENSHOTS / "exceptions.png"))

    ref, invoice_id, amount = _payment_to_match(served.engine, exception_id)
    _type(
        driver,
        "Other invoices, one per line as INVOICE_ID=AMOUNT",
        f"{invoice_id}={amount}",
        area=True,
    )
    _type(driver, "Note", "matched in the browser test")
    _click(driver, "Allocate")
    _wait_text(driver, f"{ref} allocated to {invoice_id}")
    with tenant_session(served.engine, TENANT) as session:
        manual = session.scalars(
            select(Allocation).where(
                Allocation.transaction_ref == ref, Allocation.origin == "manual"
            )
        ).all()
    assert [(a.invoice_id, a.created_by) for a in manual] == [(invoice_id, EMAIL)]

    _open(driver, "audit_log", "Verify chain")
    _type(driver, "Search actor, action or entity", EMAIL + "\n")
    _wait_text(driver, "allocation")
    _click(driver, "Verify chain")
    _wait_text(driver, "verifies")

    _open(driver, "reports", "Build report")
    driver.find_element("xpath", '//label[.//p[text()="pdf"]]').click()
    _click(driver, "Build report")
    _wait_text(driver, "SHA-256 digest of the content")
    _click(driver, f"Download recon-{TENANT}-", prefix=True)
    pdfs = wait_until(
        "the PDF report is downloaded",
        lambda: [p for p in served.downloads.glob("*.pdf") if p.stat().st_size > 0],
        timeout=WAIT,
    )
    assert pdfs[0].read_bytes().startswith(b"%PDF")
    shutil.rmtree(served.downloads.parent / "chromium-profile", ignore_errors=True)
