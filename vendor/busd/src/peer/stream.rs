use std::pin::Pin;

use crate::trace;
use anyhow::{bail, Error, Result};
use futures_util::{Stream as FutureStream, TryStream, TryStreamExt};
use zbus::{message, Message, MessageStream};

use crate::peer::Peer;

/// Message stream for a peer.
///
/// This stream ensures the following for each message produced:
///
/// * The destination field is present and readable for non-signals.
/// * The sender field is present and set to the unique name of the peer.
pub struct Stream {
    stream: Pin<Box<StreamInner>>,
}

type StreamInner = dyn TryStream<Ok = Message, Error = Error, Item = Result<Message>> + Send;

impl Stream {
    pub fn for_peer(peer: &Peer, msg_stream: MessageStream) -> Self {
        let unique_name = peer.unique_name().clone();
        let stream = msg_stream.map_err(Into::into).and_then(move |msg| {
            let unique_name = unique_name.clone();
            async move {
                let header = msg.header();

                // Ensure destination field is present and readable for non-signals.
                if msg.message_type() != message::Type::Signal && header.destination().is_none() {
                    bail!("missing destination field");
                }

                // Ensure sender field is present. If it is not we add it using the unique name
                // of the peer, as most clients leave it out.
                match header.sender() {
                    Some(sender) if *sender == unique_name => Ok(msg),
                    Some(_) => bail!("failed to parse message: Invalid sender field"),
                    None => {
                        let new_msg = msg.with_sender(&unique_name)?;
                        trace!("Added sender field to message: {:?}", new_msg);

                        Ok(new_msg)
                    }
                }
            }
        });

        Self {
            stream: Box::pin(stream),
        }
    }
}

impl FutureStream for Stream {
    type Item = Result<Message>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context,
    ) -> std::task::Poll<Option<Result<Message>>> {
        FutureStream::poll_next(Pin::new(&mut self.get_mut().stream), cx)
    }
}
