//! A blocking generic netlink socket for the `mptcp_pm` family: resolve the family's id once,
//! then send a request and collect the answer (an ack, one message, or a dump). The kernel
//! answers these at once (no I/O behind them), so blocking calls are fine even in async code;
//! a receive timeout still bounds a lost answer.

use std::io;
use std::time::Duration;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

use super::message::{FAMILY_NAME, Message};
use crate::netlink::Error;

/// The longest wait for an answer: far above the microseconds the kernel takes.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Genl {
    socket: Socket,
    family: u16,
    seq: u32,
}

impl Genl {
    /// Opens the socket in the calling thread's network namespace; `Ok(None)` when the kernel
    /// has no `mptcp_pm` family (built without MPTCP).
    pub fn open() -> Result<Option<Genl>, Error> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(Error::Socket)?;
        socket.bind_auto().map_err(Error::Socket)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(Error::Socket)?;
        set_receive_timeout(&socket, ANSWER_TIMEOUT).map_err(Error::Socket)?;
        let mut genl = Genl { socket, family: 0, seq: 0 };
        let what = format!("look up the generic netlink family {FAMILY_NAME}");
        let mut request = GenlMessage::from_payload(GenlCtrl { cmd: GenlCtrlCmd::GetFamily, nlas: vec![GenlCtrlAttrs::FamilyName(FAMILY_NAME.to_string())] });
        request.set_resolved_family_id(libc::GENL_ID_CTRL as u16);
        let answers = match genl.exchange(request, NLM_F_REQUEST, &what) {
            Ok(a) => a,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = answers.iter().flat_map(|m| &m.payload.nlas).find_map(|a| match a {
            GenlCtrlAttrs::FamilyId(id) => Some(*id),
            _ => None,
        });
        genl.family = id.ok_or_else(|| Error::Protocol { what, detail: "no family id in the answer".into() })?;
        Ok(Some(genl))
    }

    /// Sends a command and waits for its ack.
    pub fn execute(&mut self, message: Message, what: &str) -> Result<(), Error> {
        let mut request = GenlMessage::from_payload(message);
        request.set_resolved_family_id(self.family);
        self.exchange(request, NLM_F_REQUEST | NLM_F_ACK, what).map(drop)
    }

    /// Sends a get and returns its answers (`dump`: every object).
    pub fn query(&mut self, message: Message, dump: bool, what: &str) -> Result<Vec<Message>, Error> {
        let mut request = GenlMessage::from_payload(message);
        request.set_resolved_family_id(self.family);
        let flags = if dump { NLM_F_REQUEST | NLM_F_DUMP } else { NLM_F_REQUEST };
        Ok(self.exchange(request, flags, what)?.into_iter().map(|m| m.payload).collect())
    }

    fn exchange<F>(&mut self, payload: GenlMessage<F>, flags: u16, what: &str) -> Result<Vec<GenlMessage<F>>, Error>
    where
        F: netlink_packet_generic::GenlFamily
            + netlink_packet_core::Emitable
            + netlink_packet_core::ParseableParametrized<[u8], netlink_packet_generic::GenlHeader>
            + std::fmt::Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = NetlinkMessage::from(payload);
        msg.header.flags = flags;
        msg.header.sequence_number = self.seq;
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(|e| Error::Kernel { what: what.to_string(), source: e })?;

        let dump = flags & NLM_F_DUMP != 0;
        let expects_ack = flags & NLM_F_ACK != 0;
        let mut answers = Vec::new();
        loop {
            let (bytes, _) = self.socket.recv_from_full().map_err(|e| Error::Kernel { what: what.to_string(), source: e })?;
            let mut offset = 0;
            while offset < bytes.len() {
                let reply = NetlinkMessage::<GenlMessage<F>>::deserialize(&bytes[offset..])
                    .map_err(|e| Error::Protocol { what: what.to_string(), detail: e.to_string() })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(Error::Protocol { what: what.to_string(), detail: "an empty netlink message".into() });
                }
                offset += len.next_multiple_of(4);
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(answers),
                        Some(code) => return Err(Error::from_errno(what, code.get().abs())),
                    },
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::InnerMessage(m) => {
                        answers.push(m);
                        if !dump && !expects_ack {
                            return Ok(answers);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn set_receive_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
    use nix::sys::time::TimeVal;
    setsockopt(socket, ReceiveTimeout, &TimeVal::new(timeout.as_secs() as _, timeout.subsec_micros() as _)).map_err(io::Error::from)
}
