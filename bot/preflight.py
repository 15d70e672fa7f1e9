"""The core's own ``minpcode doctor`` checks: settings, WeChat, GrowingIO, the data folder, the font, the URL,
and whether SVG logos can be drawn.

    checks = core_preflights(settings)          # each a bot.ports.Preflight
    rows = [row for check in checks for row in await check.checks()]

Every call is read-only: WeChat's ``stable_token`` in normal mode (it does not invalidate the token
a running ``serve`` holds), GrowingIO's products list, ``GET /healthz``. No code is made, no quota
spent. A part that is not configured answers one ``skipped`` row; a failed row names the setting.
The Slack and WeCom checks live with their front-ends (handlers/*/preflight.py).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import httpx
from pydantic import SecretStr

from bot import chart
from bot.config import Settings
from bot.errors import MinpcodeError, UpstreamError
from bot.links import plain_link_problems
from bot.messages import caller_ip
from bot.net import is_loopback
from bot.ports import Check, Preflight
from bot.startup import history_elsewhere, startup_report
from bot.upstream.growingio import GrowingIOClient
from bot.upstream.tokens import StableTokenSource
from storage.db import pending_migrations, server_version

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
LOW_SPACE = 200 * 1024 * 1024  # bytes: below this the images and backups beside the database may not fit


row = Check.of


def skipped(part: str, zh: str, en: str) -> Check:
    return row(part, "configured", "skipped", zh, en)


def upstream_failed(part: str, name: str, exc: MinpcodeError, setting: str, fix: tuple[str, str]) -> Check:
    """A failed row from the error a client raised: its own bilingual words, and the setting to change."""
    code = f" ({exc.code})" if isinstance(exc, UpstreamError) and exc.code not in (None, "") else ""
    return row(part, name, "failed", exc.zh + code, exc.en + code, fix=fix, setting=setting)


class SettingsPreflight:
    """The settings parse (done before this runs) and every value is usable."""

    name = "settings"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def checks(self) -> list[Check]:
        problems = self.settings.problems()
        if not problems:
            return [row("settings", "parse", "ok", "设置都可用。", "Every setting is usable.")]
        return [row("settings", "value", "failed", line, line, setting=line.split("=", 1)[0].split(" ", 1)[0],
                    fix=("按这一行的说明修改。", "Change it as the line says.")) for line in problems]


class StartupPreflight:
    """The start-up report serve prints (bot/startup.py): the mode and why, and each variable with one
    of our prefixes that is no setting (a misspelling, as a warning). Half-configured parts are the
    parts' own rows."""

    name = "mode"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def checks(self) -> list[Check]:
        report = startup_report(self.settings)
        mode = "sandbox" if report.mode == "sandbox" else "live"
        rows = [row("settings", "mode", "ok", f"{'沙盒' if mode == 'sandbox' else '正式'}模式：{report.why.zh}",
                    f"{mode} mode: {report.why.en}")]
        for unknown in report.unknown:
            hint = (f"改成 {unknown.closest}。", f"Rename it to {unknown.closest}.") if unknown.closest else \
                   ("去掉它。", "Remove it.")
            rows.append(row("settings", "unknown variable", "warning", f"{unknown.name} 不是 minpcode 的设置，被忽略了。",
                            f"{unknown.name} (in the {unknown.source}) is not a minpcode setting and is ignored.",
                            setting=unknown.name, fix=hint))
        return rows


class WeChatPreflight:
    """The mini program's AppID and AppSecret, through ``stable_token`` (normal mode)."""

    name = "wechat"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def checks(self) -> list[Check]:
        s = self.settings
        if not (s.wechat_appid or s.wechat_secret):
            return [skipped("wechat", "没有配置（WECHAT_APPID/WECHAT_SECRET）。", "Not configured (WECHAT_APPID/WECHAT_SECRET).")]
        if not s.wechat_configured:
            missing = "WECHAT_SECRET" if s.wechat_appid else "WECHAT_APPID"
            return [row("wechat", "token", "failed", f"{missing} 没有设置。", f"{missing} is not set.", setting=missing,
                        fix=(f"设置 {missing}（或两者都去掉）。", f"Set {missing} (or unset both)."))]
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            source = StableTokenSource(http, s.wechat_api_url, s.wechat_appid or "", s.wechat_secret or SecretStr(""))
            try:
                await source.get()
            except UpstreamError as exc:
                return [self._failed(exc)]
        return [row("wechat", "token", "ok", f"小程序 {s.wechat_appid} 的 access_token 获取成功。",
                    f"Got an access token for mini program {s.wechat_appid}.")]

    def _failed(self, exc: UpstreamError) -> Check:
        if exc.code == 40164:
            ip = caller_ip(exc.raw) or "这台服务器的出口 IP / this server's egress IP"
            return row("wechat", "ip whitelist", "failed", f"微信拒绝了来自 {ip} 的请求：它不在 IP 白名单里（40164）。",
                       f"WeChat refused the call from {ip}: it is not on the IP whitelist (40164).",
                       setting="WeChat IP whitelist",
                       fix=(f"在微信公众平台「开发管理 → 开发设置 → IP白名单」中添加 {ip}。",
                            f"Add {ip} in the WeChat console under Development → Settings → IP whitelist."))
        if exc.code == 40013:
            return upstream_failed("wechat", "appid", exc, "WECHAT_APPID",
                                   ("把小程序的 AppID（wx 开头）填到 WECHAT_APPID。",
                                    "Put the mini program's AppID (starts with wx) in WECHAT_APPID."))
        if exc.code in (40125, 40243, 40001):
            return upstream_failed("wechat", "secret", exc, "WECHAT_SECRET",
                                   ("在公众平台「开发管理」核对或重置 AppSecret，填到 WECHAT_SECRET。",
                                    "Check or reset the AppSecret in the WeChat console; put it in WECHAT_SECRET."))
        return upstream_failed("wechat", "token", exc, "WECHAT_API_URL",
                               ("检查网络和 WECHAT_API_URL，稍后再试。", "Check the network and WECHAT_API_URL, then try again."))


class GrowingIOPreflight:
    """GrowingIO's token and project (the products list) and that ``GIO_PRODUCT_ID`` is one of them."""

    name = "gio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def checks(self) -> list[Check]:
        s = self.settings
        if not (s.gio_project_uid or s.gio_token or s.gio_product_id):
            return [skipped("gio", "没有配置（GIO_PROJECT_UID/GIO_TOKEN/GIO_PRODUCT_ID）。",
                            "Not configured (GIO_PROJECT_UID/GIO_TOKEN/GIO_PRODUCT_ID).")]
        if missing := s.gio_missing:
            names = ", ".join(missing)
            return [row("gio", "configured", "failed", f"{names} 没有设置。", f"{names} not set.", setting=missing[0],
                        fix=(f"设置 {names}（或都去掉，不用 GrowingIO）。", f"Set {names} (or unset all, to leave GrowingIO off)."))]
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            client = GrowingIOClient(http, s.gio_api_url, s.gio_project_uid or "", s.gio_client_id or None,
                                     s.gio_token or SecretStr(""))
            try:
                products = await client.products()
            except UpstreamError as exc:
                return [self._failed(exc)]
        rows = [row("gio", "token and project", "ok", f"项目 {s.gio_project_uid} 有 {len(products)} 个应用。",
                    f"Project {s.gio_project_uid} has {len(products)} products.")]
        found = next((p for p in products if s.gio_product_id in (p.id, p.spn)), None)
        if found is None:
            names = ", ".join(f"{p.id} ({p.name or p.spn})" for p in products if p.platform == "minp") or "-"
            rows.append(row("gio", "product", "failed", f"项目里没有应用 {s.gio_product_id}；小程序应用有：{names}。",
                            f"The project has no product {s.gio_product_id}; its mini programs: {names}.",
                            setting="GIO_PRODUCT_ID", fix=("把其中一个小程序应用的 id 填到 GIO_PRODUCT_ID。",
                                                           "Put one of those mini programs' ids in GIO_PRODUCT_ID.")))
        elif found.platform not in (None, "minp"):
            rows.append(row("gio", "product", "failed", f"应用 {found.id} 不是微信小程序（{found.platform}）。",
                            f"Product {found.id} is not a WeChat mini program ({found.platform}).",
                            setting="GIO_PRODUCT_ID", fix=("换成一个微信小程序应用的 id。", "Use a WeChat mini program's id.")))
        else:
            rows.append(row("gio", "product", "ok", f"应用 {found.id}：{found.name}（{found.spn}）。",
                            f"Product {found.id}: {found.name} ({found.spn})."))
        return rows

    def _failed(self, exc: UpstreamError) -> Check:
        if exc.code in (401, 403):
            setting = "GIO_TOKEN" if exc.code == 401 or not self.settings.gio_client_id else "GIO_CLIENT_ID"
            return upstream_failed("gio", "token", exc, setting,
                                   ("在 GrowingIO「API Token 管理」中新建 token，填到 GIO_TOKEN。",
                                    "Create a token under GrowingIO's API Token management; put it in GIO_TOKEN."))
        if exc.code == 404:
            return upstream_failed("gio", "project", exc, "GIO_PROJECT_UID",
                                   ("把项目 ID（项目设置里）填到 GIO_PROJECT_UID。",
                                    "Put the project id (from the project settings) in GIO_PROJECT_UID."))
        return upstream_failed("gio", "token", exc, "GIO_API_URL",
                               ("检查网络和 GIO_API_URL，稍后再试。", "Check the network and GIO_API_URL, then try again."))


class DataDirPreflight:
    """The data folder exists (or can be made), is writable, has room, and hides no history an earlier
    version left in ./data (bot/startup.py: serve refuses to start on that)."""

    name = "data"

    def __init__(self, settings: Settings, low_space: int = LOW_SPACE) -> None:
        self.settings = settings
        self.folder = settings.minpcode_data_dir.expanduser()
        self.low_space = low_space

    async def checks(self) -> list[Check]:
        stranded = history_elsewhere(self.settings)
        if stranded is None:
            return self._folder()
        # serve refuses to start on it: an all-green table here would be a wrong answer
        return [row("data", "old history", "failed", stranded.zh, stranded.en, setting="MINPCODE_DATA_DIR",
                    fix=(f"设置 MINPCODE_DATA_DIR={stranded.old}，或把 {stranded.old} 里的文件移到 {stranded.current}。",
                         f"Set MINPCODE_DATA_DIR={stranded.old}, or move the files in {stranded.old} to "
                         f"{stranded.current}.")),
                *self._folder()]

    def _folder(self) -> list[Check]:
        folder = self.folder
        fix = (f"让运行 minpcode 的用户能写 {folder}，或把 MINPCODE_DATA_DIR 改成能写的文件夹。",
               f"Let the user running minpcode write {folder}, or point MINPCODE_DATA_DIR at a writable folder.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
                pass
        except OSError as exc:
            return [row("data", "writable", "failed", f"数据文件夹 {folder} 不能写（{exc.strerror}）。",
                        f"The data folder {folder} is not writable ({exc.strerror}).", setting="MINPCODE_DATA_DIR",
                        fix=fix)]
        free = shutil.disk_usage(folder).free
        mib = free // (1024 * 1024)
        if free < self.low_space:
            return [row("data", "free space", "failed", f"数据文件夹 {folder} 只剩 {mib} MiB。",
                        f"The data folder {folder} has only {mib} MiB free.", setting="MINPCODE_DATA_DIR",
                        fix=("腾出空间，或把 MINPCODE_DATA_DIR 移到更大的磁盘。",
                             "Free some space, or move MINPCODE_DATA_DIR to a larger disk."))]
        return [row("data", "folder", "ok", f"{folder} 可写，剩余 {mib} MiB。", f"{folder} is writable, {mib} MiB free.")]


class DatabasePreflight:
    """The database answers and its schema is current: SQLite's file in the data folder (read-only), or the
    PostgreSQL server at MINPCODE_DATABASE_URL (connected to, one read; nothing changed)."""

    name = "database"

    def __init__(self, settings: Settings) -> None:
        self.folder = settings.minpcode_data_dir.expanduser()
        self.url = settings.database_url

    async def checks(self) -> list[Check]:
        return await asyncio.to_thread(self._checks)

    def _checks(self) -> list[Check]:
        if self.url is None:
            try:
                todo = pending_migrations(self.folder)
            except MinpcodeError as exc:
                return [row("database", "schema", "failed", exc.zh, exc.en, setting="MINPCODE_DATA_DIR")]
            return [self._schema(todo, "SQLite")]
        fix = ("检查 MINPCODE_DATABASE_URL（主机、端口、用户、密码、数据库名）和 PostgreSQL 服务是否在运行。",
               "Check MINPCODE_DATABASE_URL (host, port, user, password, database) and that the PostgreSQL server runs.")
        try:
            version = server_version(self.url)
            todo = pending_migrations(self.folder, self.url)
        except Exception as exc:
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return [row("database", "connection", "failed", f"连不上 PostgreSQL：{why}", f"Cannot reach PostgreSQL: {why}",
                        setting="MINPCODE_DATABASE_URL", fix=fix)]
        return [row("database", "connection", "ok", f"PostgreSQL {version}", f"PostgreSQL {version}"),
                self._schema(todo, "PostgreSQL")]

    def _schema(self, todo: list[tuple[str, bool]], backend: str) -> Check:
        if not todo:
            return row("database", "schema", "ok", f"{backend}：表结构是最新的。", f"{backend}: the schema is up to date.")
        if not any(changes for _, changes in todo) or backend == "SQLite":
            # new tables only (a new database too), or SQLite, which writes its own backup first: nothing to do
            return row("database", "schema", "ok", f"{backend}：启动时会执行 {len(todo)} 个迁移。",
                       f"{backend}: {len(todo)} migrations will run at start.")
        return row("database", "schema", "failed",
                   f"有 {len(todo)} 个迁移会改动已有的表：serve 会拒绝启动。", f"{len(todo)} migrations would change "
                   "existing tables: serve refuses to start.", setting="MINPCODE_MIGRATE",
                   fix=('先 pg_dump -Fc -f minpcode.dump "$MINPCODE_DATABASE_URL"，再用 MINPCODE_MIGRATE=yes 启动一次。',
                        'Run pg_dump -Fc -f minpcode.dump "$MINPCODE_DATABASE_URL", then start once with '
                        'MINPCODE_MIGRATE=yes.'))


class FontPreflight:
    """A CJK font for the summary charts (Chinese names would draw as empty boxes without one)."""

    name = "font"

    def __init__(self, settings: Settings, find: Callable[[], tuple[str, Path] | None] = chart.cjk_font) -> None:
        self.wanted = settings.minpcode_cjk_font
        self.find = find

    async def checks(self) -> list[Check]:
        if self.wanted is not None and not self.wanted.expanduser().is_file():
            return [row("font", "cjk font", "failed", f"MINPCODE_CJK_FONT 指向的 {self.wanted} 不存在。",
                        f"MINPCODE_CJK_FONT points at {self.wanted}, which does not exist.", setting="MINPCODE_CJK_FONT",
                        fix=("填一个存在的 .ttf/.otf/.ttc 字体文件，或去掉这个设置。",
                             "Put an existing .ttf/.otf/.ttc font file there, or unset it."))]
        found = self.find()
        if found is None:
            return [row("font", "cjk font", "failed", "没有找到中文字体：汇总图里的中文会显示成方框。",
                        "No CJK font found: Chinese names in summary charts would show as boxes.",
                        setting="MINPCODE_CJK_FONT", fix=("安装 fonts-noto-cjk，或把字体文件填到 MINPCODE_CJK_FONT。",
                                                          "Install fonts-noto-cjk, or put a font file in MINPCODE_CJK_FONT."))]
        family, path = found
        return [row("font", "cjk font", "ok", f"{family}（{path}）", f"{family} ({path})")]


# What loading cairosvg gave (bot/posters/svg.py): the module or None, and which part is missing
# ("cairosvg" or "libcairo"). The process hands the loader in, so the core imports no feature.
SvgLoaded = tuple[ModuleType | None, str | None]

# A one-pixel drawing: proves libcairo draws, not only that it was found.
_SVG_PROBE = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><rect width="1" height="1"/></svg>'


class SvgPreflight:
    """SVG logos on posters (docs/posters.md promises them): cairosvg is installed, loads the system's libcairo
    and draws a pixel. Without libcairo every SVG logo is refused; doctor says so and what to install before
    someone's logo is refused in a chat. A warning, not a failure: PNG and JPEG logos and the rest still work."""

    name = "posters"

    def __init__(self, load: Callable[[], SvgLoaded]) -> None:
        self.load = load

    async def checks(self) -> list[Check]:
        cairosvg, missing = self.load()
        if cairosvg is None and missing != "libcairo":
            return [self._unavailable("缺少 Python 包 cairosvg", "the Python package cairosvg is missing",
                                      ("重新安装 minpcode（pip install .），它会装上 cairosvg。",
                                       "Reinstall minpcode (pip install .), which installs cairosvg."))]
        if cairosvg is None:
            return [self._unavailable("缺少系统库 libcairo", "libcairo is missing",
                                      ("安装 libcairo：Debian/Ubuntu 用 apt-get install libcairo2，Alpine 用 apk add cairo，"
                                       "macOS 用 brew install cairo（容器镜像已自带）。",
                                       "Install libcairo: apt-get install libcairo2 on Debian/Ubuntu, apk add cairo on "
                                       "Alpine, brew install cairo on macOS (the container image has it)."))]
        try:
            cairosvg.svg2png(bytestring=_SVG_PROBE, unsafe=False)
        except Exception as exc:  # a libcairo that loads but cannot draw is as good as none
            return [self._unavailable(f"libcairo 不能绘制（{type(exc).__name__}）",
                                      f"libcairo cannot draw ({type(exc).__name__})",
                                      ("重新安装 libcairo（Debian/Ubuntu：apt-get install --reinstall libcairo2）。",
                                       "Reinstall libcairo (Debian/Ubuntu: apt-get install --reinstall libcairo2)."))]
        import cairocffi  # already loaded by cairosvg: for libcairo's version

        version = f"cairosvg {cairosvg.__version__}, libcairo {cairocffi.cairo_version_string()}"
        return [row("posters", "svg logos", "ok", f"可以绘制 SVG 标志（{version}）。", f"SVG logos can be drawn ({version}).")]

    @staticmethod
    def _unavailable(zh: str, en: str, fix: tuple[str, str]) -> Check:
        return row("posters", "svg logos", "warning", f"不能使用 SVG 标志：{zh}，SVG 标志会被拒绝（PNG、JPEG 标志不受影响）。",
                   f"SVG logos unavailable: {en}, so SVG logos are refused (PNG and JPEG logos still work).", fix=fix)


class PublicUrlPreflight:
    """``MINPCODE_PUBLIC_URL`` answers ``/healthz`` (Slack, WeCom and image links use it); loopback is skipped.
    An address WeChat would refuse for live codes (http, an IP: bot/links.py ``plain_link_problems``) is a warning."""

    name = "public url"

    def __init__(self, settings: Settings, *, even_loopback: bool = False) -> None:
        self.url = settings.minpcode_public_url.strip().rstrip("/")
        self.given = settings.people_url is not None
        self.even_loopback = even_loopback  # tests: probe a loopback URL as if it were public

    async def checks(self) -> list[Check]:
        if not self.given:
            # Not set is not "a loopback address": the default is ours, and what it costs is every link for people.
            return [row("public url", "configured", "warning",
                        "MINPCODE_PUBLIC_URL 没有设置：聊天里不会有链接（上传链接、下载链接、海报按钮、图片链接）。",
                        "MINPCODE_PUBLIC_URL is not set: no links in the chats (upload links, download links, "
                        "poster buttons, image links).", setting="MINPCODE_PUBLIC_URL",
                        fix=("把 MINPCODE_PUBLIC_URL 设为外面访问 minpcode serve 的地址（https://…）。",
                             "Set MINPCODE_PUBLIC_URL to the address people reach minpcode serve at (https://…)."))]
        if is_loopback(self.url) and not self.even_loopback:
            return [skipped("public url", f"MINPCODE_PUBLIC_URL 是本机地址（{self.url}），外面访问不到，不检查。",
                            f"MINPCODE_PUBLIC_URL is a loopback address ({self.url}); not checked.")]
        warnings = [row("public url", "live codes", "warning", p.zh, p.en, setting="MINPCODE_PUBLIC_URL")
                    for p in plain_link_problems(self.url)]
        return [*await self._healthz(), *warnings]

    async def _healthz(self) -> list[Check]:
        fix = ("让这个地址从外面能访问到 minpcode serve（反向代理、防火墙），或改 MINPCODE_PUBLIC_URL。",
               "Make this address reach minpcode serve (reverse proxy, firewall), or change MINPCODE_PUBLIC_URL.")
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True) as http:
                response = await http.get(self.url + "/healthz")
            answer = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            return [row("public url", "healthz", "failed", f"{self.url}/healthz 没有回答（{type(exc).__name__}）。",
                        f"{self.url}/healthz did not answer ({type(exc).__name__}).", setting="MINPCODE_PUBLIC_URL",
                        fix=fix)]
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            return [row("public url", "healthz", "failed", f"{self.url}/healthz 回答了 HTTP {response.status_code}，不是 minpcode。",
                        f"{self.url}/healthz answered HTTP {response.status_code}, not minpcode's health check.",
                        setting="MINPCODE_PUBLIC_URL", fix=fix)]
        version = answer.get("version", "?")
        return [row("public url", "healthz", "ok", f"{self.url} 在运行 minpcode {version}。",
                    f"{self.url} runs minpcode {version}.")]


def core_preflights(settings: Settings) -> list[Preflight]:
    """The checks of the parts the core owns, in table order."""
    return [SettingsPreflight(settings), StartupPreflight(settings), DataDirPreflight(settings),
            DatabasePreflight(settings), FontPreflight(settings),
            WeChatPreflight(settings), GrowingIOPreflight(settings), PublicUrlPreflight(settings)]


__all__ = ["DataDirPreflight", "DatabasePreflight", "FontPreflight", "GrowingIOPreflight", "PublicUrlPreflight",
           "SettingsPreflight", "StartupPreflight", "SvgLoaded", "SvgPreflight", "WeChatPreflight", "core_preflights", "row",
           "skipped", "upstream_failed"]
