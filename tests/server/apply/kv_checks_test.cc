#include "server/apply/kv_checks.h"

#include "api/errors.h"
#include "gtest/gtest.h"

namespace kvd::server {
namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

RequestOp Put(const std::string& key) {
  RequestOp op;
  op.mutable_request_put()->set_key(key);
  return op;
}
RequestOp Del(const std::string& key, const std::string& end = "") {
  RequestOp op;
  op.mutable_request_delete_range()->set_key(key);
  op.mutable_request_delete_range()->set_range_end(end);
  return op;
}
RequestOp Nested(std::vector<RequestOp> then_ops, std::vector<RequestOp> else_ops) {
  RequestOp op;
  for (auto& o : then_ops) *op.mutable_request_txn()->add_success() = o;
  for (auto& o : else_ops) *op.mutable_request_txn()->add_failure() = o;
  return op;
}
TxnRequest Txn(std::vector<RequestOp> success) {
  TxnRequest t;
  for (auto& o : success) *t.add_success() = o;
  return t;
}

TEST(KvChecksTest, EmptyKeysAndFlagConflicts) {
  etcdserverpb::PutRequest put;
  EXPECT_EQ(CheckPutRequest(put), errors::EmptyKey());
  put.set_key("k");
  put.set_ignore_value(true);
  put.set_value("v");
  EXPECT_EQ(CheckPutRequest(put), errors::ValueProvided());
  put.clear_value();
  put.set_ignore_lease(true);
  put.set_lease(5);
  EXPECT_EQ(CheckPutRequest(put), errors::LeaseProvided());
  EXPECT_EQ(CheckRangeRequest(etcdserverpb::RangeRequest()), errors::EmptyKey());
  EXPECT_EQ(CheckDeleteRequest(etcdserverpb::DeleteRangeRequest()), errors::EmptyKey());
}

TEST(KvChecksTest, TxnOpLimitCountsTheWidestListPerLevel) {
  TxnRequest t;
  for (int i = 0; i < 128; ++i) *t.add_success() = Put("k" + std::to_string(i));
  EXPECT_TRUE(CheckTxnRequest(t, 128).ok());
  *t.add_success() = Put("one-too-many");
  EXPECT_EQ(CheckTxnRequest(t, 128), errors::TooManyOps());
  // A nested txn gets what its parent level left.
  TxnRequest outer;
  for (int i = 0; i < 3; ++i) {
    std::string n = std::to_string(i);
    *outer.add_success() = Nested({Put("a" + n), Put("b" + n)}, {});
  }
  EXPECT_EQ(CheckTxnRequest(outer, 4), errors::TooManyOps());
  EXPECT_TRUE(CheckTxnRequest(outer, 5).ok());
}

TEST(KvChecksTest, EmptyOpIsRejectedAsEtcdDoes) {
  TxnRequest t;
  t.add_success();
  EXPECT_EQ(CheckTxnRequest(t, 128), errors::KeyNotFound());
}

TEST(KvChecksTest, OverlappingWritesOnOnePathAreDuplicates) {
  EXPECT_EQ(CheckTxnRequest(Txn({Put("a"), Put("a")}), 128), errors::DuplicateKey());
  EXPECT_EQ(CheckTxnRequest(Txn({Del("a", "c"), Put("b")}), 128), errors::DuplicateKey());
  EXPECT_EQ(CheckTxnRequest(Txn({Del("b"), Put("b")}), 128), errors::DuplicateKey());
  EXPECT_TRUE(CheckTxnRequest(Txn({Del("a", "b"), Put("b")}), 128).ok());
  // A "from key" delete (end "\0") does not count as covering keys, as in etcd.
  EXPECT_TRUE(CheckTxnRequest(Txn({Del("a", std::string("\0", 1)), Put("b")}), 128).ok());
  // Success and failure branches never both run.
  TxnRequest both;
  *both.add_success() = Put("a");
  *both.add_failure() = Put("a");
  EXPECT_TRUE(CheckTxnRequest(both, 128).ok());
  // The same key on both sides of one nested txn is fine; beside the parent's put it is not.
  EXPECT_TRUE(CheckTxnRequest(Txn({Nested({Put("a")}, {Put("a")})}), 128).ok());
  EXPECT_EQ(CheckTxnRequest(Txn({Nested({Put("a")}, {}), Put("a")}), 128), errors::DuplicateKey());
  EXPECT_EQ(CheckTxnRequest(Txn({Nested({}, {Put("a")}), Del("a")}), 128), errors::DuplicateKey());
}

}  // namespace
}  // namespace kvd::server
