//! The built-in echo worker: the reply is the request body, byte for byte.

use super::{Delivery, Handler, Outcome, ReplyBuf};

/// Replies with the request body.
#[derive(Default, Clone, Copy, Debug)]
pub struct Echo;

impl Handler for Echo {
    fn handle(&mut self, d: &Delivery<'_>, reply: &mut ReplyBuf<'_>) -> Outcome {
        reply.write(d.body);
        Outcome::Success
    }
}
