#include "client/concurrency.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "api/key_range.h"

namespace kvd::client {

namespace pb = ::etcdserverpb;

namespace {

using ::kvd::api::PrefixEnd;

// How long a failed keep-alive or a broken watch waits before the next try (clientv3's
// retry pause).
constexpr absl::Duration kRetryPause = absl::Milliseconds(500);

std::string SessionKey(const std::string& prefix, int64_t lease) {
  return absl::StrCat(prefix, absl::Hex(static_cast<uint64_t>(lease)));
}

pb::Compare CreateRevisionIs(const std::string& key, int64_t rev) {
  pb::Compare cmp;
  cmp.set_key(key);
  cmp.set_target(pb::Compare::CREATE);
  cmp.set_result(pb::Compare::EQUAL);
  cmp.set_create_revision(rev);
  return cmp;
}

// The first (kAscend) or last created key under prefix, optionally created at or before
// max_create_rev (clientv3's WithFirstCreate / WithLastCreate + WithMaxCreateRev).
pb::RangeRequest ByCreate(const std::string& prefix, pb::RangeRequest::SortOrder order,
                          int64_t max_create_rev = 0) {
  pb::RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(PrefixEnd(prefix));
  r.set_sort_target(pb::RangeRequest::CREATE);
  r.set_sort_order(order);
  r.set_limit(1);
  r.set_max_create_revision(max_create_rev);
  return r;
}

bool Retryable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

// Watches from create.start_revision and hands each response with events to `handle` until
// it returns true. Like clientv3's watcher, a broken stream (or one the server cancels for
// losing its leader) is opened again from the revision after the last event seen.
// Errors: ContextCanceled(); a compacted start revision; non-retryable watch errors.
absl::Status WatchUntil(Client* client, pb::WatchCreateRequest create, const Canceler& cancel,
                        const std::function<bool(const pb::WatchResponse&)>& handle) {
  while (true) {
    if (cancel.canceled()) return ContextCanceled();
    absl::StatusOr<std::unique_ptr<WatchStream>> stream = client->Watch(create);
    if (!stream.ok()) {
      if (!Retryable(stream.status())) return stream.status();
      cancel.Wait(kRetryPause);
      continue;
    }
    WatchStream* s = stream->get();
    const int id = cancel.OnCancel([s] { s->Cancel(); });
    absl::Status ended;
    bool done = false;
    while (true) {
      absl::StatusOr<pb::WatchResponse> r = s->Next();
      if (!r.ok()) {
        ended = r.status();
        break;
      }
      if (r->canceled()) {
        if (r->compact_revision() != 0) {
          ended = absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted");
        } else {
          ended = absl::UnavailableError(r->cancel_reason());  // e.g. the member lost its leader
        }
        break;
      }
      if (r->events_size() == 0) continue;
      create.set_start_revision(r->events(r->events_size() - 1).kv().mod_revision() + 1);
      if (handle(*r)) {
        done = true;
        break;
      }
    }
    cancel.Remove(id);
    s->Cancel();
    stream->reset();
    if (done) return absl::OkStatus();
    if (cancel.canceled()) return ContextCanceled();
    if (!Retryable(ended) && ended.code() != absl::StatusCode::kCancelled) return ended;
    cancel.Wait(kRetryPause);
  }
}

}  // namespace

// --- Canceler --------------------------------------------------------------------------

void Canceler::Cancel() {
  absl::MutexLock lock(&mu_);
  if (canceled_) return;
  canceled_ = true;
  for (auto& [id, f] : callbacks_) f();
  callbacks_.clear();
}

bool Canceler::canceled() const {
  absl::MutexLock lock(&mu_);
  return canceled_;
}

int Canceler::OnCancel(std::function<void()> f) const {
  absl::MutexLock lock(&mu_);
  const int id = next_id_++;
  if (canceled_) {
    f();
  } else {
    callbacks_.emplace(id, std::move(f));
  }
  return id;
}

void Canceler::Remove(int id) const {
  absl::MutexLock lock(&mu_);
  callbacks_.erase(id);
}

bool Canceler::Wait(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&canceled_), timeout);
  return canceled_;
}

absl::Status ContextCanceled() { return absl::CancelledError("context canceled"); }

// --- Session ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Session>> Session::Create(Client* client, int64_t ttl_s) {
  pb::LeaseGrantRequest grant;
  grant.set_ttl(ttl_s);
  absl::StatusOr<pb::LeaseGrantResponse> r = client->LeaseGrant(grant);
  if (!r.ok()) return r.status();
  return std::unique_ptr<Session>(new Session(client, r->id(), r->ttl()));
}

Session::Session(Client* client, int64_t lease, int64_t ttl_s)
    : client_(client), lease_(lease), ttl_s_(ttl_s) {
  keep_alive_ = std::thread([this] { KeepAlive(); });
}

Session::~Session() {
  stop_.Cancel();
  keep_alive_.join();
}

void Session::KeepAlive() {
  // Renew every third of the TTL; the session is over once the lease is gone or a whole
  // TTL passed since the last renewal (clientv3's keep-alive deadline).
  absl::Time deadline = absl::Now() + absl::Seconds(ttl_s_);
  while (!stop_.canceled()) {
    absl::StatusOr<pb::LeaseKeepAliveResponse> r = client_->LeaseKeepAliveOnce(lease_);
    absl::Duration pause = kRetryPause;
    if (r.ok()) {
      deadline = absl::Now() + absl::Seconds(r->ttl());
      pause = std::max(kRetryPause, absl::Seconds(r->ttl()) / 3);
    } else if (r.status().code() == absl::StatusCode::kNotFound) {
      break;
    }
    if (absl::Now() >= deadline) break;
    if (stop_.Wait(std::min(pause, deadline - absl::Now()))) return;
  }
  if (!stop_.canceled()) done_.Cancel();
}

// --- WaitDeletes -----------------------------------------------------------------------

absl::StatusOr<pb::ResponseHeader> WaitDeletes(Client* client, const std::string& prefix,
                                               int64_t max_create_rev, const Canceler& cancel) {
  while (true) {
    if (cancel.canceled()) return ContextCanceled();
    absl::StatusOr<pb::RangeResponse> r =
        client->Range(ByCreate(prefix, pb::RangeRequest::DESCEND, max_create_rev));
    if (!r.ok()) return r.status();
    if (r->kvs().empty()) return r->header();
    // Wait for that key's deletion, from the revision it was seen at.
    pb::WatchCreateRequest create;
    create.set_key(r->kvs(0).key());
    create.set_start_revision(r->header().revision());
    absl::Status waited = WatchUntil(client, create, cancel, [](const pb::WatchResponse& w) {
      return std::any_of(w.events().begin(), w.events().end(),
                         [](const mvccpb::Event& e) { return e.type() == mvccpb::Event::DELETE; });
    });
    if (!waited.ok()) return waited;
  }
}

// --- Mutex -----------------------------------------------------------------------------

Mutex::Mutex(Session* session, const std::string& name) : session_(session), prefix_(name + "/") {}

absl::Status Mutex::Lock(const Canceler& cancel) {
  Client* client = session_->client();
  key_ = SessionKey(prefix_, session_->lease());
  pb::TxnRequest txn;
  *txn.add_compare() = CreateRevisionIs(key_, 0);
  pb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key_);
  put->set_lease(session_->lease());
  *txn.add_success()->mutable_request_range() = ByCreate(prefix_, pb::RangeRequest::ASCEND);
  txn.add_failure()->mutable_request_range()->set_key(key_);  // this session holds it already
  *txn.add_failure()->mutable_request_range() = ByCreate(prefix_, pb::RangeRequest::ASCEND);
  absl::StatusOr<pb::TxnResponse> t = client->Txn(txn);
  if (!t.ok()) return t.status();
  rev_ = t->header().revision();
  if (!t->succeeded()) {
    const auto& mine = t->responses(0).response_range().kvs();
    if (mine.empty()) return absl::UnknownError("mutex: session is expired");
    rev_ = mine[0].create_revision();
  }
  const auto& owner = t->responses(1).response_range().kvs();
  if (owner.empty() || owner[0].create_revision() == rev_) {
    header_ = t->header();
    return absl::OkStatus();
  }
  absl::StatusOr<pb::ResponseHeader> waited = WaitDeletes(client, prefix_, rev_ - 1, cancel);
  if (!waited.ok()) {
    Unlock().IgnoreError();
    return waited.status();
  }
  header_ = *waited;
  return absl::OkStatus();
}

absl::Status Mutex::Unlock() {
  pb::DeleteRangeRequest del;
  del.set_key(key_);
  return session_->client()->DeleteRange(del).status();
}

// --- Election --------------------------------------------------------------------------

Election::Election(Session* session, const std::string& name)
    : session_(session), prefix_(name + "/") {}

absl::Status Election::Campaign(const std::string& value, const Canceler& cancel) {
  Client* client = session_->client();
  key_ = SessionKey(prefix_, session_->lease());
  pb::TxnRequest txn;
  *txn.add_compare() = CreateRevisionIs(key_, 0);
  pb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key_);
  put->set_value(value);
  put->set_lease(session_->lease());
  txn.add_failure()->mutable_request_range()->set_key(key_);
  absl::StatusOr<pb::TxnResponse> t = client->Txn(txn);
  if (!t.ok()) return t.status();
  rev_ = t->header().revision();
  if (!t->succeeded()) {
    const auto& mine = t->responses(0).response_range().kvs();
    if (mine.empty()) return absl::UnknownError("mutex: session is expired");
    rev_ = mine[0].create_revision();
    if (mine[0].value() != value) {  // proclaim the new value while still this key's
      pb::TxnRequest proclaim;
      *proclaim.add_compare() = CreateRevisionIs(key_, rev_);
      *proclaim.add_success()->mutable_request_put() = *put;
      absl::StatusOr<pb::TxnResponse> p = client->Txn(proclaim);
      if (!p.ok() || !p->succeeded()) {
        Resign().IgnoreError();
        return p.ok() ? absl::UnknownError("election: not leader") : p.status();
      }
    }
  }
  absl::StatusOr<pb::ResponseHeader> waited = WaitDeletes(client, prefix_, rev_ - 1, cancel);
  if (!waited.ok()) {
    if (cancel.canceled()) Resign().IgnoreError();
    return waited.status();
  }
  return absl::OkStatus();
}

absl::Status Election::Resign() {
  pb::TxnRequest txn;
  *txn.add_compare() = CreateRevisionIs(key_, rev_);
  txn.add_success()->mutable_request_delete_range()->set_key(key_);
  return session_->client()->Txn(txn).status();
}

absl::Status Election::Observe(Client* client, const std::string& name, const Canceler& cancel,
                               const std::function<void(const pb::RangeResponse&)>& on_leader) {
  const std::string prefix = name + "/";
  while (true) {
    if (cancel.canceled()) return absl::OkStatus();
    absl::StatusOr<pb::RangeResponse> leader =
        client->Range(ByCreate(prefix, pb::RangeRequest::ASCEND));
    if (!leader.ok()) return leader.status();
    // What clientv3 reports: the read (or the first put's header and key), then each put
    // to the leader's key with the watch response's header.
    pb::RangeResponse current = *leader;
    if (leader->kvs().empty()) {
      pb::WatchCreateRequest create;  // wait for the first put under the prefix
      create.set_key(prefix);
      create.set_range_end(PrefixEnd(prefix));
      create.set_start_revision(leader->header().revision());
      absl::Status s = WatchUntil(client, create, cancel, [&](const pb::WatchResponse& w) {
        for (const mvccpb::Event& e : w.events()) {
          if (e.type() != mvccpb::Event::PUT) continue;
          *current.mutable_header() = w.header();
          current.mutable_header()->set_revision(e.kv().mod_revision());
          *current.add_kvs() = e.kv();
          return true;
        }
        return false;
      });
      if (cancel.canceled()) return absl::OkStatus();
      if (!s.ok()) return s;
    }
    on_leader(current);
    // Follow the leader's key until it is deleted.
    pb::WatchCreateRequest create;
    create.set_key(current.kvs(0).key());
    create.set_start_revision(current.header().revision() + 1);
    absl::Status s = WatchUntil(client, create, cancel, [&](const pb::WatchResponse& w) {
      for (const mvccpb::Event& e : w.events()) {
        if (e.type() == mvccpb::Event::DELETE) return true;
        *current.mutable_header() = w.header();
        current.clear_kvs();
        *current.add_kvs() = e.kv();
        on_leader(current);
      }
      return false;
    });
    if (cancel.canceled()) return absl::OkStatus();
    if (!s.ok()) return s;
  }
}

}  // namespace kvd::client
