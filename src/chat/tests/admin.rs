//! Admin commands: FORBIDDEN for everyone but the admin's sessions, the admin login, and
//! users / rooms / alert / kick / time / stats / help, on one shard and across two.

use super::*;
use crate::config::AuthMode;
use crate::services::console::{AdminCommand, AdminRequest, ADMIN_HELP};
use crate::services::Done;

const KICKED: &str = "you were disconnected by an administrator";

fn admin_services() -> Arc<Services> {
    services(0, Some(("Root", "s3cret!")))
}

/// Shard 0 with the admin on key 1 (binary) and bob on key 2 (JSON).
fn with_admin(shards: usize) -> World {
    let mut w = World::with(shards, admin_services(), 0);
    w.connect(0, 1, BIN);
    w.send(0, 1, login_with("root", "s3cret!"));
    assert_eq!(w.take(0, 1), [login_ack("root", "general")]);
    w.enter(0, 2, "bob", JSON);
    w.outs.iter_mut().for_each(Recorder::clear);
    w
}

#[test]
fn admin_commands_are_forbidden_without_the_admin_login() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    for command in ["users", "kick bob", "alert hi", "nonsense"] {
        w.send(0, 1, admin(command));
        assert_eq!(w.take(0, 1), [error(ErrorCode::Forbidden, "admin commands need the admin login")]);
    }
    assert_eq!(w.outs[0].closed(2), None);
    w.assert_quiet();

    // Same on a server that has an admin, for everyone else.
    let mut w = with_admin(1);
    w.send(0, 2, admin("users"));
    assert_eq!(w.take(0, 2), [error(ErrorCode::Forbidden, "admin commands need the admin login")]);
}

#[test]
fn the_admin_name_needs_the_admin_password() {
    let mut w = World::with(1, admin_services(), 0);
    w.connect(0, 1, BIN);
    let wrong = reject(ErrorCode::AuthFailed, "wrong user name or password");
    w.send(0, 1, login("root"));
    w.send(0, 1, login_with("ROOT", "guess"));
    assert_eq!(w.take(0, 1), [wrong.clone(), wrong]);
    w.send(0, 1, ClientMsg::Register { username: "Root".into(), password: "s3cret!!".into() });
    assert_eq!(w.take(0, 1), [reject(ErrorCode::AuthFailed, "that name is reserved")]);
    assert!(!w.hubs[0].is_logged_in(1));
    // The name is matched case-insensitively and kept as written.
    w.send(0, 1, login_with("ROOT", "s3cret!"));
    assert_eq!(w.take(0, 1), [login_ack("ROOT", "general")]);
    w.send(0, 1, admin("help"));
    assert_eq!(w.take(0, 1), [admin_reply(ADMIN_HELP)]);
}

#[test]
fn users_and_rooms_describe_every_room() {
    let mut w = with_admin(1);
    w.send(0, 2, join("tech"));
    w.outs[0].clear();
    w.send(0, 1, admin("users"));
    w.send(0, 1, admin("/rooms"));
    let users = "2 users online\n  general: root\n  tech: bob";
    let rooms = "2 rooms\n  general: 1 users\n  tech: 1 users";
    assert_eq!(w.take(0, 1), [admin_reply(users), admin_reply(rooms)]);
    assert_eq!(w.take(0, 2), []);
}

#[test]
fn alert_reaches_everyone_including_the_admin_in_one_encoding_per_format() {
    let mut w = with_admin(1);
    w.enter(0, 3, "carol", JSON);
    w.send(0, 3, join("tech"));
    w.outs[0].clear();

    w.send(0, 1, admin("alert lunch is served"));
    let alert = notice(SystemKind::Alert, "", "root", "lunch is served");
    assert_eq!(w.take(0, 1), [alert.clone(), admin_reply("alert sent to 3 users")]);
    let (bob, carol) = (w.outs[0].frames(2), w.outs[0].frames(3));
    assert_eq!(decode(WireFormat::Json, &bob[0]), alert);
    assert!(shared(&[&bob[0], &carol[0]]), "every JSON user shares one frame, whatever the room");
}

#[test]
fn kick_closes_the_target_with_forbidden_and_the_disconnect_follows() {
    let mut w = with_admin(1);
    w.enter(0, 3, "carol", BIN);
    w.send(0, 1, admin("kick Bob 0"));
    assert_eq!(w.take(0, 1), [admin_reply("kicked bob")]);
    assert_eq!(w.outs[0].closed(2), Some((ErrorCode::Forbidden, KICKED)));
    assert_eq!(w.outs[0].closed(3), None);
    // The server disconnects the closing connection: the room hears it, the name is free.
    w.leave(0, 2);
    let gone = notice(SystemKind::Disconnect, "general", "bob", "bob disconnected from general");
    assert_eq!(w.take(0, 3), std::slice::from_ref(&gone));
    assert_eq!(w.take(0, 1), [gone]);
    w.send(0, 1, admin("kick bob"));
    w.send(0, 1, admin("kick"));
    let replies = [
        admin_reply("no user named \"bob\" is online, banned for 300 s"),
        admin_reply("`kick` needs an argument: the user name"),
    ];
    assert_eq!(w.take(0, 1), replies);
}

#[test]
fn time_stats_and_unknown_commands() {
    let mut w = with_admin(1);
    w.send(0, 2, say("one"));
    w.send(0, 1, admin("time"));
    w.send(0, 1, admin("stats"));
    w.send(0, 1, admin("frob now"));
    let unknown = format!("unknown admin command \"frob\"; {ADMIN_HELP}");
    let replies = [
        admin_reply("server time: 2023-11-14 22:13:20.000 UTC (1700000000000 ms)"),
        admin_reply("this shard only (no server-wide counters wired): 2 users, 2 logins, 1 room messages"),
        admin_reply(&unknown),
    ];
    let got = w.take(0, 1);
    assert_eq!(got[0], room_msg(1, "general", "bob", "one", false));
    assert_eq!(got[1..], replies);
}

#[test]
fn kick_and_alert_reach_other_shards() {
    let mut w = with_admin(2);
    w.enter(1, 1, "carol", BIN);
    w.enter(1, 2, "dave", JSON);

    w.send(0, 1, admin("kick carol 0"));
    assert_eq!(w.take(0, 1), [admin_reply("kicked carol")]);
    assert_eq!(w.outs[1].closed(1), None, "not before shard 0's turn ends");
    w.settle();
    assert_eq!(w.outs[1].closed(1), Some((ErrorCode::Forbidden, KICKED)));
    assert_eq!(w.outs[1].closed(2), None);
    w.leave(1, 1);
    w.settle();
    w.outs.iter_mut().for_each(Recorder::clear);

    w.send(0, 1, admin("alert fire drill"));
    let alert = notice(SystemKind::Alert, "", "root", "fire drill");
    assert_eq!(w.take(0, 1), [alert.clone(), admin_reply("alert sent to 3 users")]);
    let bob = w.outs[0].frames(2);
    w.settle();
    let dave = w.outs[1].frames(2);
    assert_eq!(decode(WireFormat::Json, &dave[0]), alert);
    assert!(shared(&[&bob[0], &dave[0]]), "the other shard delivers the frame it was sent");
    w.assert_quiet();
}

#[test]
fn a_stale_kick_spares_the_next_user_of_the_key() {
    let mut w = with_admin(2);
    w.enter(1, 1, "carol", BIN);
    w.send(0, 1, admin("kick carol"));
    w.hubs[0].send_remote();
    w.leave(1, 1);
    w.enter(1, 1, "dave", BIN);
    w.settle();
    assert_eq!(w.outs[1].closed(1), None);
}

#[test]
fn console_commands_run_on_the_hub_as_console() {
    let mut w = with_admin(1);
    let (tx, rx) = std::sync::mpsc::channel();
    let req = AdminRequest { command: AdminCommand::Alert("maintenance".into()), reply: tx };
    w.hubs[0].remote(&mut w.outs[0], Remote::Done(Done::Console(req)));
    assert_eq!(rx.try_recv().as_deref(), Ok("alert sent to 2 users"));
    let alert = notice(SystemKind::Alert, "", "console", "maintenance");
    assert_eq!(w.take(0, 1), std::slice::from_ref(&alert));
    assert_eq!(w.take(0, 2), [alert]);
}

#[test]
fn repeated_successful_admin_logins_are_not_throttled() {
    let mut w = World::with(1, admin_services(), 0);
    for key in 1..=6 {
        w.connect(0, key, BIN);
        w.send(0, key, login_with("root", "s3cret!"));
        assert_eq!(w.take(0, key), [login_ack("root", "general")], "login {key}");
        w.leave(0, key);
    }
}

#[test]
fn repeated_successful_passkey_logins_are_not_throttled() {
    let mut config = ServerConfig::loopback();
    config.services.files = false;
    config.services.auth = AuthMode::Passkey;
    config.services.passkey = Some("letmein".into());
    let mut w = World::with(1, Services::start(&config).expect("services"), 0);
    for key in 1..=6 {
        w.connect(0, key, JSON);
        w.send(0, key, login_with("alice", "letmein"));
        assert_eq!(w.take(0, key), [login_ack("alice", "general")], "login {key}");
        w.leave(0, key);
    }
}

#[test]
fn an_admin_name_with_a_final_sigma_is_recognised() {
    let mut w = World::with(1, services(0, Some(("ΣΟΣ", "pw"))), 0);
    w.connect(0, 1, BIN);
    w.send(0, 1, login("ΣΟΣ"));
    assert_eq!(w.take(0, 1), [reject(ErrorCode::AuthFailed, "wrong user name or password")]);
    w.send(0, 1, login_with("ΣΟΣ", "pw"));
    w.send(0, 1, admin("time"));
    let time = admin_reply("server time: 2023-11-14 22:13:20.000 UTC (1700000000000 ms)");
    assert_eq!(w.take(0, 1), [login_ack("ΣΟΣ", "general"), time]);
}

#[test]
fn kick_with_a_ban_refuses_the_name_until_unbanned() {
    let mut w = with_admin(2);
    w.enter(1, 1, "carol", BIN);
    w.send(0, 1, admin("kick Carol 2m"));
    assert_eq!(w.take(0, 1), [admin_reply("kicked carol, banned for 120 s")]);
    w.settle();
    let (code, text) = w.outs[1].closed(1).expect("carol is closed");
    assert_eq!(code, ErrorCode::Banned);
    assert!(text.contains("120 s"), "{text}");
    w.leave(1, 1);
    // From any shard (any address), the name is refused with the time left.
    w.connect(0, 5, JSON);
    w.send(0, 5, login("CAROL"));
    let got = w.take(0, 5);
    let [ServerMsg::LoginReject { code: ErrorCode::Banned, retry_ms: Some(left), .. }] = got.as_slice() else {
        panic!("not a ban: {got:?}")
    };
    assert!(*left > 100_000 && *left <= 120_000, "{left} ms left");
    w.send(0, 1, admin("unban carol"));
    assert_eq!(w.take(0, 1), [admin_reply("unbanned carol")]);
    w.send(0, 5, login("carol"));
    assert_eq!(w.take(0, 5)[0], login_ack("carol", "general"));
}
