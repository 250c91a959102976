//! The dispatcher's arguments and environment, as bytes: whatever a caller passes, the event
//! parser answers in time without panicking; a refusal is one line of at most
//! [`event::MAX_REFUSAL`] bytes that names the variable or argument; an event's interface is
//! exactly the bytes the dispatcher passed (never a lossy reading of them, which could be the
//! name of another uplink) and a name the kernel accepts.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::LazyLock;

use multihome::dispatch::event::{self, Environment, Event, Kind};
use multihome::policy::valid_interface_name;
use proptest::prelude::*;
use proptest::sample::Index;

use super::{TRICKY, config, within};

#[path = "../dispatcher/fixtures.rs"]
mod fixtures;

/// The variables the parser reads, and some it does not.
const KEYS: &[&str] = &[
    "NM_DISPATCHER_ACTION",
    "DEVICE_IFACE",
    "IP4_GATEWAY",
    "IP4_NUM_ADDRESSES",
    "IP4_ADDRESS_0",
    "IP4_ADDRESS_1",
    "IP4_ADDRESS_2",
    "IFACE",
    "STATE",
    "IP_ADDRS",
    "OperationalState",
    "PATH",
];

/// What every refusal names: a variable, an argument, or what is missing.
const FIELDS: &[&str] =
    &["NM_DISPATCHER_ACTION", "IP4_GATEWAY", "IP4_NUM_ADDRESSES", "IP4_ADDRESS_", "IFACE", "STATE", "IP_ADDRS", "argument", "no dispatcher event"];

static FIXTURES: LazyLock<Vec<(Vec<OsString>, Environment)>> = LazyLock::new(|| fixtures::cases().into_iter().map(|c| (c.args, c.env)).collect());

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::sample::select(TRICKY).prop_map(|s| s.as_bytes().to_vec()),
        2 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => "[ -~]{0,40}".prop_map(String::into_bytes),
        // Long values: many addresses, or one long word.
        1 => (proptest::sample::select(TRICKY), 1usize..20_000).prop_map(|(s, n)| format!("{s} ").repeat(n).into_bytes()),
    ]
}

/// Checks the parser's answer for one input.
fn judge(args: Vec<OsString>, env: Environment) -> Result<(), TestCaseError> {
    let (a, e) = (args.clone(), env.clone());
    let answer = within("event::parse", move || event::parse(&a, &e));
    match answer {
        Ok(event) => event_is_what_was_passed(&event, &args, &env),
        Err(refused) => {
            let text = refused.to_string();
            prop_assert!(text.len() <= event::MAX_REFUSAL, "{} bytes: {text}", text.len());
            prop_assert!(!text.chars().any(char::is_control), "not one clean line: {text:?}");
            prop_assert!(FIELDS.iter().any(|f| text.contains(f)), "names no variable or argument: {text}");
            Ok(())
        }
    }
}

fn event_is_what_was_passed(event: &Event, args: &[OsString], env: &Environment) -> Result<(), TestCaseError> {
    let (interface, action) = match event.dispatcher {
        event::Dispatcher::NetworkManager => (args[0].as_bytes(), args[1].as_bytes()),
        event::Dispatcher::Networkd => (env[&OsString::from("IFACE")].as_bytes(), env[&OsString::from("STATE")].as_bytes()),
    };
    prop_assert_eq!(event.action.as_bytes(), action);
    prop_assert_eq!(event.interface.as_bytes(), interface, "the interface is not the bytes passed");
    if !event.interface.is_empty() {
        prop_assert!(valid_interface_name(&event.interface).is_ok(), "{:?} is no interface name", event.interface);
    }
    if let Kind::Up { addresses, gateway } = &event.kind {
        prop_assert!(addresses.len() <= event::MAX_ADDRESSES);
        let odd = |a: &Ipv4Addr| a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast();
        for a in addresses {
            prop_assert!(!odd(&a.addr), "{a} taken as a host's address");
            prop_assert!(a.prefix_len.is_none_or(|l| (1..=32).contains(&l)), "{a}");
        }
        prop_assert!(!gateway.as_ref().is_some_and(odd), "{gateway:?} taken as a router");
    }
    Ok(())
}

/// A change to one fixture: a variable or argument replaced, deleted, or added.
#[derive(Debug, Clone)]
enum Change {
    Value(Index, Vec<u8>),
    Argument(Index, Vec<u8>),
    /// One byte of a value replaced.
    Byte(Index, Index, u8),
    Remove(Index),
    Add(&'static str, Vec<u8>),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (any::<Index>(), bytes()).prop_map(|(i, v)| Change::Value(i, v)),
        2 => (any::<Index>(), bytes()).prop_map(|(i, v)| Change::Argument(i, v)),
        2 => (any::<Index>(), any::<Index>(), any::<u8>()).prop_map(|(i, j, b)| Change::Byte(i, j, b)),
        1 => any::<Index>().prop_map(Change::Remove),
        2 => (proptest::sample::select(KEYS), bytes()).prop_map(|(k, v)| Change::Add(k, v)),
    ]
}

fn apply(args: &mut [OsString], env: &mut Environment, change: &Change) {
    let key = |i: &Index, env: &Environment| env.keys().nth(i.index(env.len().max(1))).cloned();
    match change {
        Change::Value(i, v) => {
            if let Some(k) = key(i, env) {
                env.insert(k, OsString::from_vec(v.clone()));
            }
        }
        Change::Argument(i, v) if !args.is_empty() => {
            let n = i.index(args.len());
            args[n] = OsString::from_vec(v.clone());
        }
        Change::Argument(..) => {}
        Change::Byte(i, j, b) => {
            if let Some(k) = key(i, env) {
                let mut v = env[&k].clone().into_vec();
                if !v.is_empty() {
                    let at = j.index(v.len());
                    v[at] = *b;
                }
                env.insert(k, OsString::from_vec(v));
            }
        }
        Change::Remove(i) => {
            if let Some(k) = key(i, env) {
                env.remove(&k);
            }
        }
        Change::Add(k, v) => drop(env.insert(OsString::from(k), OsString::from_vec(v.clone()))),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_arguments_and_environments_are_refused_with_the_field_or_read_exactly(
        args in proptest::collection::vec(bytes(), 0..4),
        env in proptest::collection::vec((proptest::sample::select(KEYS), bytes()), 0..8),
    ) {
        let args = args.into_iter().map(OsString::from_vec).collect();
        let env = env.into_iter().map(|(k, v)| (OsString::from(k), OsString::from_vec(v))).collect();
        judge(args, env)?;
    }

    #[test]
    fn a_fixture_with_changed_values_is_refused_with_the_field_or_read_exactly(
        fixture in any::<Index>(),
        changes in proptest::collection::vec(change(), 1..4),
    ) {
        let (mut args, mut env) = fixture.get(&FIXTURES).clone();
        for c in &changes {
            apply(&mut args, &mut env, c);
        }
        judge(args, env)?;
    }
}
