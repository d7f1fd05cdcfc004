// SPDX-License-Identifier: GPL-2.0

//! Attachments: the links of the program to interfaces, the one worker that creates and removes them, and the state they share.
//!
//! Links are created by one work item on the module's ordered workqueue
//! (link creation takes rtnl, which notifiers hold); the notifier
//! (`netdev.rs`), the sysfs files (`control.rs`) and `init` queue requests
//! for it and, but for the notifier, wait for the answer. `mode=` decides
//! the XDP mode: native, generic, or native with a fallback to generic.

use crate::{
    ffi::{
        bpf::{self, LinkRef, MapRef, ProgFile, ProgRef},
        netdev as kdev,
        wq::OwnedQueue,
        Fd,
    },
    netdev,
    params::{IfName, Mode},
    sysfs, uapi, Params,
};
use kernel::{
    prelude::*,
    str::CStr,
    sync::{new_condvar, new_mutex, Arc, CondVar, Mutex},
    workqueue::{impl_has_work, new_work, Work, WorkItem},
};

/// How many recent attach failures `status` lists.
const FAILURES_KEPT: usize = 8;

/// The XDP mode an interface actually got.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attached {
    /// In the driver.
    Native,
    /// In the stack (skb).
    Generic,
}

impl Attached {
    /// Its `XDP_FLAGS_*` bit.
    fn flags(self) -> u32 {
        match self {
            Attached::Native => uapi::XDP_FLAGS_DRV_MODE,
            Attached::Generic => uapi::XDP_FLAGS_SKB_MODE,
        }
    }

    /// Its word in `links`, `status` and dmesg.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Attached::Native => sysfs::MODE_NATIVE,
            Attached::Generic => sysfs::MODE_GENERIC,
        }
    }
}

/// An interface name as C wants it.
fn c_name(name: &IfName) -> Result<&CStr> {
    CStr::from_bytes_with_nul(name.as_bytes_with_nul()).map_err(|_| EINVAL)
}

/// Why an attach was asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `ifaces=` at load time.
    Load,
    /// An interface that appeared and matches `ifaces=`.
    Hotplug,
    /// An interface renamed to a name that matches `ifaces=`.
    Rename,
    /// A write to `/sys/module/xdpguard/bpf/attach` or `detach`.
    Sysfs,
}

impl Origin {
    /// Its word in `status` and dmesg.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Origin::Load => "load",
            Origin::Hotplug => "hotplug",
            Origin::Rename => "rename",
            Origin::Sysfs => "sysfs",
        }
    }

    /// Attaches that `ifaces=` patterns asked for, as opposed to an operator.
    pub(crate) fn automatic(self) -> bool {
        matches!(self, Origin::Hotplug | Origin::Rename)
    }
}

/// The program attached to one interface.
pub(crate) struct Attachment {
    pub(crate) name: IfName,
    pub(crate) ifindex: i32,
    pub(crate) mode: Attached,
    pub(crate) link: LinkRef,
    pub(crate) origin: Origin,
}

/// Attaches the program behind `prog` to interface `ifindex` with a BPF link
/// in the mode `mode` asks for; `auto` tries native first and falls back to
/// generic. Takes rtnl (in `bpf_xdp_link_attach`).
fn attach(prog: &Fd, ifindex: i32, name: &IfName, mode: Mode) -> Result<(Attached, LinkRef)> {
    let try_mode = |m: Attached| -> Result<(Attached, LinkRef)> {
        let fd = bpf::xdp_link_create(prog, ifindex, m.flags())?;
        Ok((m, LinkRef::from_fd(&fd)?))
    };
    let name = name.shown();
    // ENODEV (the interface went away) is the caller's to report, or not.
    let hint = |e: Error, otherwise| {
        if e == ENODEV {
            None
        } else {
            Some(hint(e, otherwise))
        }
    };
    let result = match mode {
        Mode::Native => try_mode(Attached::Native).inspect_err(|e| {
            if let Some(h) = hint(*e, "the driver has no native XDP or refuses it now (veth: bring the peer up; virtio_net: turn off LRO/GRO offloads); use mode=auto or mode=generic") {
                pr_err!("{name}: cannot attach in native mode: {e:?}; {h}\n")
            }
        }),
        Mode::Generic => try_mode(Attached::Generic).inspect_err(|e| {
            if let Some(h) = hint(*e, "see dmesg above") {
                pr_err!("{name}: cannot attach in generic mode: {e:?}; {h}\n")
            }
        }),
        Mode::Auto => try_mode(Attached::Native).or_else(|native| {
            try_mode(Attached::Generic).map_err(|generic| {
                // Another program on the device fails the attempt in its
                // mode with EBUSY and the other attempt with EEXIST (one
                // mode at a time): report the EBUSY, whichever attempt
                // returned it, not the generic attempt's EEXIST.
                let e = if native == EBUSY { native } else { generic };
                if let Some(h) = hint(e, "see dmesg above") {
                    pr_err!("{name}: cannot attach: native mode {native:?}, generic mode {generic:?}; {h}\n")
                }
                e
            })
        }),
    };
    result
}

/// What to tell the operator about an attach error.
fn hint(e: Error, otherwise: &'static str) -> &'static str {
    if e == EBUSY || e == EEXIST {
        "another XDP program is attached; remove it first (ip link set dev IFACE xdp off)"
    } else if e == ENODEV {
        "the interface went away while attaching"
    } else {
        otherwise
    }
}

/// The answer to a request someone waits for.
#[pin_data]
pub(crate) struct Reply {
    #[pin]
    result: Mutex<Option<Result>>,
    #[pin]
    done: CondVar,
}

impl Reply {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Reply {
                result <- new_mutex!(None),
                done <- new_condvar!(),
            }),
            GFP_KERNEL,
        )
    }

    fn complete(&self, result: Result) {
        *self.result.lock() = Some(result);
        self.done.notify_all();
    }

    /// Waits for the result. `interruptible`: a signal ends the wait with
    /// `EINTR` (the request still runs).
    fn wait(&self, interruptible: bool) -> Result {
        let mut guard = self.result.lock();
        loop {
            if let Some(result) = *guard {
                return result;
            }
            if interruptible {
                if self.done.wait_interruptible(&mut guard) {
                    return Err(EINTR);
                }
            } else {
                self.done.wait(&mut guard);
            }
        }
    }
}

/// Which interface a request is about.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    /// By name, looked up when the request runs.
    Name(IfName),
    /// By ifindex (from a notifier), attached only if its name still
    /// matches `ifaces=` when the request runs.
    Index(i32),
}

/// Work for the worker.
pub(crate) enum Op {
    Attach(Target),
    Detach(IfName),
    /// Detaches the link of an interface that left the namespace: the
    /// notifier holds rtnl, which detaching takes.
    Release(Attachment),
}

pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) origin: Origin,
    pub(crate) reply: Option<Arc<Reply>>,
}

/// The attach the worker is doing now, outside the state lock. Notifier
/// events for its interface are recorded here and applied when it ends.
pub(crate) struct Inflight {
    pub(crate) ifindex: i32,
    pub(crate) name: IfName,
    /// The interface went away (or left the namespace) meanwhile.
    pub(crate) gone: bool,
}

/// A failed attach, for `status`.
#[derive(Clone, Copy)]
pub(crate) struct Failure {
    pub(crate) name: IfName,
    pub(crate) error: Error,
    pub(crate) origin: Origin,
}

/// Everything that changes while the module is loaded.
pub(crate) struct State {
    /// The workqueue; `None` once unloading has begun (nothing new runs).
    wq: Option<OwnedQueue>,
    /// Requests not yet taken by the worker.
    queue: KVec<Request>,
    /// Attached interfaces; `None` slots are free (removal never allocates).
    attached: KVec<Option<Attachment>>,
    pub(crate) inflight: Option<Inflight>,
    /// The last `FAILURES_KEPT` failed attaches, oldest overwritten first.
    failures: [Option<Failure>; FAILURES_KEPT],
    next_failure: usize,
}

impl State {
    pub(crate) fn closing(&self) -> bool {
        self.wq.is_none()
    }

    pub(crate) fn attachments(&self) -> impl Iterator<Item = &Attachment> {
        self.attached.iter().filter_map(|a| a.as_ref())
    }

    pub(crate) fn attachment_mut(&mut self, ifindex: i32) -> Option<&mut Attachment> {
        self.attached
            .iter_mut()
            .filter_map(|a| a.as_mut())
            .find(|a| a.ifindex == ifindex)
    }

    pub(crate) fn is_attached(&self, ifindex: i32) -> bool {
        self.attachments().any(|a| a.ifindex == ifindex)
    }

    /// Removes an attachment. Dropping it detaches only when the deferred
    /// release of its link runs; `LinkRef::detach` does so at once.
    pub(crate) fn take_attachment(
        &mut self,
        pred: impl Fn(&Attachment) -> bool,
    ) -> Option<Attachment> {
        self.attached
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(&pred))
            .and_then(|slot| slot.take())
    }

    /// Records `a` in a free slot or a new one. On failure `a` is
    /// dropped, which detaches it.
    fn insert(&mut self, a: Attachment) -> Result {
        if let Some(slot) = self.attached.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(a);
            return Ok(());
        }
        self.attached.push(Some(a), GFP_KERNEL).map_err(|_| ENOMEM)
    }

    pub(crate) fn record_failure(&mut self, name: IfName, error: Error, origin: Origin) {
        self.failures[self.next_failure] = Some(Failure {
            name,
            error,
            origin,
        });
        self.next_failure = (self.next_failure + 1) % FAILURES_KEPT;
    }

    fn clear_failures(&mut self, name: &IfName) {
        for f in self.failures.iter_mut() {
            if f.as_ref().is_some_and(|f| f.name == *name) {
                *f = None;
            }
        }
    }

    /// The requests not yet taken by the worker, in order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Request> {
        self.queue.iter()
    }

    /// The kept failures, oldest first.
    pub(crate) fn failures(&self) -> impl Iterator<Item = &Failure> {
        (0..FAILURES_KEPT)
            .filter_map(move |k| self.failures[(self.next_failure + k) % FAILURES_KEPT].as_ref())
    }
}

/// What the module shares with its worker, notifier and sysfs files.
#[pin_data]
pub(crate) struct Shared {
    pub(crate) params: Params,
    pub(crate) prog: ProgRef,
    /// Gives the worker a program fd to create links with.
    prog_file: ProgFile,
    pub(crate) maps: KVec<MapRef>,
    /// Lock order: rtnl, then `state` (notifier calls hold rtnl). Nothing
    /// takes rtnl while holding `state`: link creation and name lookups run
    /// outside it.
    #[pin]
    pub(crate) state: Mutex<State>,
    #[pin]
    work: Work<Shared>,
}

impl_has_work! {
    impl HasWork<Self> for Shared { self.work }
}

impl WorkItem for Shared {
    type Pointer = Arc<Shared>;

    fn run(this: Arc<Shared>) {
        this.process();
    }
}

/// Queues `req` and makes sure the worker runs. Call with `state` locked.
pub(crate) fn queue_locked(this: &Arc<Shared>, state: &mut State, req: Request) -> Result {
    let Some(wq) = state.wq.as_ref() else {
        return Err(ENODEV);
    };
    state.queue.push(req, GFP_KERNEL)?;
    // `Err` means the work is already queued, and it will see this request:
    // the clone it hands back is dropped.
    let _ = wq.enqueue::<Arc<Shared>, 0>(this.clone());
    Ok(())
}

/// Queues a request and, if `wait`, waits for its result.
pub(crate) fn submit(this: &Arc<Shared>, op: Op, origin: Origin, interruptible: bool) -> Result {
    let reply = Reply::new()?;
    {
        let mut state = this.state.lock();
        queue_locked(
            this,
            &mut state,
            Request {
                op,
                origin,
                reply: Some(reply.clone()),
            },
        )?;
    }
    reply.wait(interruptible)
}

impl Shared {
    /// The shared state of a loaded program, with its workqueue and no
    /// attachment yet.
    pub(crate) fn new(
        params: Params,
        prog: ProgRef,
        prog_file: ProgFile,
        maps: KVec<MapRef>,
    ) -> Result<Arc<Self>> {
        let wq = OwnedQueue::new()?;
        Arc::pin_init(
            pin_init!(Shared {
                params,
                prog,
                prog_file,
                maps,
                state <- new_mutex!(State {
                    wq: Some(wq),
                    queue: KVec::new(),
                    attached: KVec::new(),
                    inflight: None,
                    failures: [None; FAILURES_KEPT],
                    next_failure: 0,
                }),
                work <- new_work!("xdpguard::work"),
            }),
            GFP_KERNEL,
        )
    }

    /// The work function: runs queued requests in order until none is left.
    fn process(&self) {
        loop {
            let batch = core::mem::take(&mut self.state.lock().queue);
            if batch.is_empty() {
                return;
            }
            for req in batch {
                let closing = self.state.lock().closing();
                let result = match req.op {
                    // Also while closing: it only lets go.
                    Op::Release(a) => {
                        a.link.detach();
                        Ok(())
                    }
                    _ if closing => Err(ENODEV),
                    Op::Attach(target) => self.do_attach(target, req.origin),
                    Op::Detach(name) => self.do_detach(&name),
                };
                if let Some(reply) = req.reply {
                    reply.complete(result);
                }
            }
        }
    }

    /// Attaches to the interface `target` names, unless already attached.
    /// Runs in the worker, holding no lock.
    fn do_attach(&self, target: Target, origin: Origin) -> Result {
        let (ifindex, name) = match target {
            Target::Name(name) => match kdev::ifindex_by_name(c_name(&name)?) {
                // The lookup also finds alternative names: record the
                // interface's own.
                Some(ifindex) => (
                    ifindex,
                    kdev::name_by_index(ifindex).map_or(name, |buf| IfName::from_c(&buf)),
                ),
                None => {
                    if origin == Origin::Sysfs {
                        pr_err!("attach: no interface named '{}' in the initial network namespace (see `ip link`)\n", name.shown());
                    }
                    return Err(ENODEV);
                }
            },
            Target::Index(ifindex) => match kdev::name_by_index(ifindex) {
                Some(buf) => (ifindex, IfName::from_c(&buf)),
                // Gone before we got to it: nothing to do.
                None => return Ok(()),
            },
        };
        // A hot-plugged interface renamed meanwhile may no longer match.
        if origin.automatic() && !self.params.matches(name.as_bytes()) {
            return Ok(());
        }
        {
            let mut state = self.state.lock();
            if state.is_attached(ifindex) {
                return Ok(());
            }
            state.inflight = Some(Inflight {
                ifindex,
                name,
                gone: false,
            });
        }

        let result = self
            .prog_file
            .install()
            .and_then(|fd| attach(&fd, ifindex, &name, self.params.mode));

        let mut state = self.state.lock();
        let Some(inflight) = state.inflight.take() else {
            return Err(EINVAL);
        };
        let (mode, link) = match result {
            Ok(ok) if !inflight.gone => ok,
            Ok((_, link)) => {
                // Moved away meanwhile (a removed device took the link off
                // itself): detach before it can come back and be attached.
                drop(state);
                link.detach();
                pr_info!(
                    "{}: went away while being attached\n",
                    inflight.name.shown()
                );
                return Err(ENODEV);
            }
            Err(e) => {
                // An interface that vanished before its hot-plug attach ran
                // is churn, not a failure.
                if !(origin.automatic() && e == ENODEV) {
                    state.record_failure(inflight.name, e, origin);
                }
                drop(state);
                if e == ENODEV && !origin.automatic() {
                    pr_err!(
                        "{}: went away while being attached\n",
                        inflight.name.shown()
                    );
                }
                return Err(e);
            }
        };
        let a = Attachment {
            name: inflight.name,
            ifindex,
            mode,
            link,
            origin,
        };
        let (name, link_id) = (a.name, a.link.id());
        if let Err(e) = state.insert(a) {
            state.record_failure(name, e, origin);
            drop(state);
            pr_err!(
                "{}: out of memory recording the attachment; detached\n",
                name.shown()
            );
            return Err(e);
        }
        state.clear_failures(&name);
        drop(state);
        pr_info!(
            "{}: attached in {} mode (link {}, {})\n",
            name.shown(),
            mode.name(),
            link_id,
            origin.name()
        );
        Ok(())
    }

    /// Detaches from the interface called `name`. Not attached is success
    /// if such an interface exists (idempotent), `ENODEV` if not.
    fn do_detach(&self, name: &IfName) -> Result {
        // By ifindex: `name` may be an alternative name.
        let ifindex = kdev::ifindex_by_name(c_name(name)?);
        let taken = ifindex.and_then(|i| self.state.lock().take_attachment(|a| a.ifindex == i));
        match taken {
            Some(a) => {
                a.link.detach();
                pr_info!(
                    "{}: detached (link {}, sysfs)\n",
                    a.name.shown(),
                    a.link.id()
                );
                Ok(())
            }
            None if ifindex.is_some() => Ok(()),
            None => {
                pr_err!("detach: no interface named '{}' in the initial network namespace (see `ip link`)\n", name.shown());
                Err(ENODEV)
            }
        }
    }
}

/// Stops the worker and detaches everything when dropped: marks the state
/// closing (the notifier and sysfs get nothing done any more), destroys the
/// workqueue (which waits for a running attach and drains queued requests:
/// attaches and detaches are answered `ENODEV`, releases done), then
/// detaches the links at once and drops them.
pub(crate) struct Running(pub(crate) Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        let wq = self.0.state.lock().wq.take();
        // Destroying waits for the work function; it takes `state` itself,
        // so this must not hold it.
        drop(wq);
        let attached = core::mem::take(&mut self.0.state.lock().attached);
        let n = attached.iter().filter(|a| a.is_some()).count();
        if n > 0 {
            pr_info!("detaching from {n} interface(s)\n");
        }
        // At once, so that nothing is attached when rmmod returns (rtnl is
        // not held here).
        for a in attached.iter().flatten() {
            a.link.detach();
        }
        drop(attached);
    }
}

/// Attaches to the interfaces `ifaces=` names or matches now. A name that
/// does not exist or an attach that fails fails the load (all or nothing),
/// except for pattern matches that vanish before they are attached.
pub(crate) fn attach_at_load(shared: &Arc<Shared>) -> Result {
    let params = &shared.params;
    if params.patterns.is_empty() {
        return Ok(());
    }
    let devices = netdev::netdevs()?;
    for p in params.patterns.iter().filter(|p| p.is_literal()) {
        if !devices
            .iter()
            .any(|d| IfName::from_c(&d.name).as_bytes() == p.as_bytes())
        {
            pr_err!(
                "ifaces=: no interface named '{}' in the initial network namespace (see `ip link`; a pattern like {}* also covers interfaces that appear later)\n",
                p.shown(),
                p.shown()
            );
            return Err(EINVAL);
        }
    }
    let mut matched = 0;
    for d in devices.iter() {
        let name = IfName::from_c(&d.name);
        if !params.matches(name.as_bytes()) {
            continue;
        }
        let literal = params.names_literally(name.as_bytes());
        match submit(shared, Op::Attach(Target::Name(name)), Origin::Load, false) {
            Ok(()) => matched += 1,
            Err(e) if e == ENODEV && !literal => {
                pr_info!("{}: went away before it could be attached\n", name.shown())
            }
            Err(e) => return Err(e),
        }
    }
    if matched == 0 {
        pr_info!("ifaces=: no interface matches yet; matching interfaces will be attached when they appear\n");
    }
    Ok(())
}
