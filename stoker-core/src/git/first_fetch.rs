//! The first fetch into an empty cache: gix's protocol layer (handshake, `ls-refs`,
//! negotiation, the shallow file) with Stoker's own pack indexer ([`super::index_pack`]) in
//! place of gix's, which maps the whole pack (see that module for why that matters).
//!
//! `gix::remote::fetch::Prepare::receive` does the same steps with gix's indexer and offers no
//! way to give it another; the steps here are the public functions it calls. Refs are updated
//! as gix's fetch updates them with `with_write_packed_refs_only(true)`: forced, into
//! `packed-refs`.

use std::sync::atomic::AtomicBool;

use gix::error::{ResultExt, message};
use gix::protocol::fetch::{Arguments, Negotiate, RefMap, Response, negotiate};
use gix::protocol::transport::client::blocking_io::Transport;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::remote::fetch::{Shallow, Tags};

use super::index_pack;

/// What a first fetch brought.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// Objects in the pack received (`None`: the server had nothing to send).
    pub(crate) objects: Option<u32>,
}

/// Fetches `refspecs` over `transport` into the empty cache `repo`: handshake (with
/// `authenticate`), the remote's refs, a pack indexed by [`index_pack::receive`], the shallow
/// file for `shallow`, then the refs.
pub(crate) fn fetch<T, P>(
    repo: &gix::Repository,
    transport: &mut T,
    authenticate: impl FnMut(
        gix::credentials::helper::Action,
    ) -> gix::Result<Option<gix::credentials::protocol::Outcome>>,
    refspecs: &[String],
    shallow: &Shallow,
    progress: P,
    cancel: &AtomicBool,
) -> gix::Result<Fetched>
where
    T: Transport,
    P: gix::NestedProgress,
    P::SubProgress: 'static,
{
    // The transport settings gix's own fetch applies from the repository's configuration
    // (for HTTP: timeouts, redirects, headers).
    let url = transport.to_url();
    if let Some(options) = repo.transport_options(url.as_ref(), None)? {
        transport.configure(&*options)?;
    }
    let mut handshake = gix::protocol::handshake(
        &mut *transport,
        gix::protocol::transport::Service::UploadPack,
        authenticate,
        Vec::new(),
        &mut gix::progress::Discard,
    )?;
    let fetch_refspecs = refspecs
        .iter()
        .map(|spec| {
            gix::refspec::parse(spec.as_str().into(), gix::refspec::parse::Operation::Fetch)
                .map(|spec| spec.to_owned())
                .or_raise(|| message!("the refspec {spec:?} does not parse"))
        })
        .collect::<gix::Result<Vec<_>>>()?;
    let user_agent = (
        "agent",
        Some(gix::protocol::agent(gix::env::agent().to_owned())),
    );
    let ref_map = handshake
        .prepare_lsrefs_or_extract_refmap(
            user_agent.clone(),
            true,
            gix::protocol::fetch::refmap::init::Context {
                fetch_refspecs,
                extra_refspecs: Vec::new(),
            },
        )?
        .fetch_blocking(gix::progress::Discard, &mut *transport, false)?;
    if ref_map.is_missing_required_mapping() {
        gix::error::bail!(gix::error::not_found(format!(
            "none of the refspecs {} matched any of the {} refs on the remote",
            refspecs.join(", "),
            ref_map.remote_refs.len()
        )));
    }

    let graph_repo = {
        let mut repo = repo.clone();
        repo.objects.unset_object_cache();
        repo
    };
    let mut graph = graph_repo.revision_graph(None);
    let mut negotiation = Negotiation {
        repo: &graph_repo,
        graph: &mut graph,
        negotiator: gix::negotiate::Algorithm::Consecutive.into_negotiator(),
        ref_map: &ref_map,
        shallow,
    };
    let pack_dir = repo.objects.store_ref().path().join("pack");
    let mut objects = None;
    gix::protocol::fetch(
        &mut negotiation,
        |input, progress, cancel| {
            let received = index_pack::receive(input, &pack_dir, progress, cancel)?;
            tracing::debug!(pack = %received.pack.display(), objects = received.objects, "received and indexed the pack");
            objects = Some(received.objects);
            Ok(true)
        },
        progress,
        cancel,
        gix::protocol::fetch::Context {
            handshake: &mut handshake,
            transport: &mut *transport,
            user_agent,
            trace_packetlines: false,
        },
        gix::protocol::fetch::Options {
            shallow_file: repo.shallow_file()?,
            shallow,
            tags: Tags::None,
            reject_shallow_remote: false,
        },
    )?;
    update_refs(repo, &ref_map)?;
    Ok(Fetched { objects })
}

/// Points each local ref the refspecs map to at what the remote advertised, forced, in
/// `packed-refs`.
fn update_refs(repo: &gix::Repository, ref_map: &RefMap) -> gix::Result<()> {
    let mut edits = Vec::new();
    for mapping in &ref_map.mappings {
        let (Some(local), Some(target)) = (&mapping.local, mapping.remote.as_id()) else {
            continue;
        };
        let name = gix::refs::FullName::try_from(local.clone())
            .or_raise(|| message!("the local ref name {local:?} is not valid"))?;
        edits.push(RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: "fetch".into(),
                },
                expected: PreviousValue::Any,
                new: gix::refs::Target::Object(target.to_owned()),
            },
            name,
            deref: false,
        });
    }
    if edits.is_empty() {
        return Ok(());
    }
    let mut repo = repo.clone();
    let committer = repo.committer_or_set_generic_fallback()?.to_owned()?;
    repo.refs
        .transaction()
        .packed_refs(
            gix::refs::file::transaction::PackedRefs::DeletionsAndNonSymbolicUpdatesRemoveLooseSourceReference(
                Box::new(&repo.objects),
            ),
        )
        .prepare(
            edits,
            gix::lock::acquire::Fail::Immediately,
            gix::lock::acquire::Fail::Immediately,
        )
        .or_raise(|| message("preparing the update of the fetched refs"))?
        .commit(Some(committer.to_ref(&mut Default::default())))
        .or_raise(|| message("updating the fetched refs"))?;
    Ok(())
}

/// gix's negotiation steps for one fetch (an empty cache has nothing in common with the
/// remote, so this asks for the wanted refs in one round).
struct Negotiation<'a, 'find, 'cache> {
    repo: &'a gix::Repository,
    graph: &'a mut gix::negotiate::Graph<'find, 'cache>,
    negotiator: Box<dyn gix::negotiate::Negotiator>,
    ref_map: &'a RefMap,
    shallow: &'a Shallow,
}

impl Negotiate for Negotiation<'_, '_, '_> {
    fn mark_complete_and_common_ref(&mut self) -> gix::Result<negotiate::Action> {
        negotiate::mark_complete_and_common_ref(
            &self.repo.objects,
            &self.repo.refs,
            || Ok(std::iter::empty::<(gix::refs::file::Store, gix::OdbHandle)>()),
            self.negotiator.as_mut(),
            self.graph,
            self.ref_map,
            self.shallow,
            negotiate::make_refmapping_ignore_predicate(Tags::None, self.ref_map),
        )
    }

    fn add_wants(&mut self, arguments: &mut Arguments, remote_ref_target_known: &[bool]) -> bool {
        negotiate::add_wants(
            &self.repo.objects,
            arguments,
            self.ref_map,
            remote_ref_target_known,
            self.shallow,
            negotiate::make_refmapping_ignore_predicate(Tags::None, self.ref_map),
        )
    }

    fn one_round(
        &mut self,
        state: &mut negotiate::one_round::State,
        arguments: &mut Arguments,
        previous_response: Option<&Response>,
    ) -> gix::Result<(negotiate::Round, bool)> {
        negotiate::one_round(
            self.negotiator.as_mut(),
            self.graph,
            state,
            arguments,
            previous_response,
        )
    }
}
