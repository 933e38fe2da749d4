import pytest

from intake.settings import SettingsError, load_settings


def test_defaults():
    s = load_settings(env={})
    assert s.database_url == "sqlite+aiosqlite:///./kesu.db" and s.http_port == 8080 and s.http_host == "127.0.0.1"


def test_environment_overrides_file(tmp_path):
    conf = tmp_path / "kesu.toml"
    conf.write_text('http_port = 9000\ndatabase_url = "sqlite+aiosqlite:///x.db"\n'
                    '[webhook.sources.shop]\nsecret = "s1"\n', encoding="utf-8")
    s = load_settings(conf, env={"KESU_HTTP_PORT": "9100", "KESU_WEBHOOK_SECRETS": "crm:s2"})
    assert s.http_port == 9100 and s.database_url == "sqlite+aiosqlite:///x.db"
    assert {(w.name, w.secret) for w in s.webhook_sources} == {("shop", "s1"), ("crm", "s2")}


@pytest.mark.parametrize("env, named", [
    ({"KESU_HTTP_PORT": "eighty"}, "http_port"),
    ({"KESU_HTTP_PORT": "70000"}, "KESU_HTTP_PORT"),
    ({"KESU_DATABASE_URL": "mysql://x"}, "KESU_DATABASE_URL"),
    ({"KESU_SMTP_HOST": "mail.example.com"}, "smtp.sender"),
    ({"KESU_SMTP_HOST": "h", "KESU_SMTP_FROM": "a@b.c", "KESU_SMTP_TLS": "maybe"}, "KESU_SMTP_TLS"),
    ({"KESU_IMAP_HOST": "h", "KESU_IMAP_USER": "u"}, "PASSWORD"),
    ({"KESU_WECHAT_APPID": "a", "KESU_WECHAT_SECRET": "s", "KESU_WECHAT_TOKEN": "t"}, "KESU_WECHAT_AES_KEY"),
    ({"KESU_WEBHOOK_SECRETS": "nosecret"}, "KESU_WEBHOOK_SECRETS"),
])
def test_invalid_setting_is_named(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(env=env)


def test_source_without_secret_is_refused(tmp_path):
    conf = tmp_path / "kesu.toml"
    conf.write_text('[webhook.sources.shop]\ncallback_url = "http://x"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="webhook.sources.shop.secret"):
        load_settings(conf, env={})


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("http_port = = 1", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad, env={})
