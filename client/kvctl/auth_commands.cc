// auth enable|disable|status, user ..., role ...
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/kvctl/commands.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/output.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;

namespace {

// Reads a new user's password: from stdin, one line (etcdctl reads the terminal without
// echo when interactive; kvctl reads stdin either way).
absl::StatusOr<std::string> ReadNewPassword(Context& ctx, const std::string& name,
                                            bool interactive) {
  std::string password;
  if (interactive) ctx.io().err << "Password of " << name << ": " << std::flush;
  std::getline(ctx.io().in, password);
  if (interactive && password.empty()) return MakeFailure(kExitBadArgs, "empty password");
  return password;
}

// The [key, range_end) of a role permission from KEY [RANGE_END] and --prefix/--from-key.
absl::Status PermRange(const std::vector<std::string>& args, const AuthFlags& flags,
                       std::string* key, std::string* range_end) {
  *key = args[0];
  range_end->clear();
  if (key->empty()) {
    if (flags.prefix && flags.from_key) {
      return MakeFailure(kExitBadArgs, "--from-key and --prefix flags are mutually exclusive");
    }
    // The empty key means "from the first key": etcd spells that "\0".
    *key = std::string(1, '\0');
    if (flags.prefix || flags.from_key) *range_end = std::string(1, '\0');
    return absl::OkStatus();
  }
  if (args.size() > 1) {
    if (flags.prefix) {
      return MakeFailure(kExitBadArgs, "unexpected endkey argument with --prefix flag");
    }
    if (flags.from_key) {
      return MakeFailure(kExitBadArgs, "unexpected endkey argument with --from-key flag");
    }
    *range_end = args[1];
  } else if (flags.prefix && flags.from_key) {
    return MakeFailure(kExitBadArgs, "--from-key and --prefix flags are mutually exclusive");
  } else if (flags.prefix) {
    *range_end = PrefixEnd(*key);
  } else if (flags.from_key) {
    *range_end = std::string(1, '\0');
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunAuth(Context& ctx, const std::vector<std::string>& positional) {
  const std::string sub = positional.empty() ? "" : positional[0];
  if (sub != "enable" && sub != "disable" && sub != "status") {
    return MakeFailure(kExitBadArgs, "usage: kvctl auth enable|disable|status");
  }
  if (positional.size() > 1) {
    return MakeFailure(kExitBadArgs,
                       absl::StrCat("auth ", sub, " command does not accept any arguments"));
  }
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  if (sub == "status") {
    absl::StatusOr<pb::AuthStatusResponse> r = (*c)->AuthStatus();
    if (!r.ok()) return r.status();
    return ctx.printer().AuthResult(
        absl::StrCat("Authentication Status: ", r->enabled() ? "true" : "false",
                     "\nAuthRevision: ", r->authrevision(), "\n"),
        *r, r->header());
  }
  if (sub == "disable") {
    absl::StatusOr<pb::AuthDisableResponse> r = (*c)->AuthDisable();
    if (!r.ok()) return r.status();
    ctx.io().out << "Authentication Disabled\n";
    return absl::OkStatus();
  }
  // Like etcdctl: create the root role and grant it to root if that is what is missing.
  while (true) {
    absl::StatusOr<pb::AuthEnableResponse> r = (*c)->AuthEnable();
    if (r.ok()) break;
    if (r.status().message() != "etcdserver: root user does not have root role") {
      return r.status();
    }
    absl::StatusOr<pb::AuthRoleAddResponse> role = (*c)->RoleAdd("root");
    if (!role.ok()) return role.status();
    absl::StatusOr<pb::AuthUserGrantRoleResponse> grant = (*c)->UserGrantRole("root", "root");
    if (!grant.ok()) return grant.status();
  }
  ctx.io().out << "Authentication Enabled\n";
  return absl::OkStatus();
}

absl::Status RunUser(Context& ctx, const std::vector<std::string>& positional,
                     const AuthFlags& flags) {
  const std::string sub = positional.empty() ? "" : positional[0];
  const std::vector<std::string> args(positional.begin() + (positional.empty() ? 0 : 1),
                                      positional.end());
  auto need = [&](size_t n, absl::string_view message) {
    return args.size() == n ? absl::OkStatus() : MakeFailure(kExitBadArgs, message);
  };
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  Printer printer = ctx.printer();
  if (sub == "add") {
    if (absl::Status s = need(1, "user add command requires user name as its argument"); !s.ok()) {
      return s;
    }
    pb::AuthUserAddRequest request;
    std::string name = args[0];
    std::string password;
    if (flags.no_password) {
      request.mutable_options()->set_no_password(true);
    } else if (!flags.new_user_password.empty()) {
      password = flags.new_user_password;
    } else if (const size_t colon = name.find(':'); colon != std::string::npos) {
      password = name.substr(colon + 1);
      name.resize(colon);
      if (name.empty()) return MakeFailure(kExitBadArgs, "empty user name is not allowed");
    } else {
      absl::StatusOr<std::string> read = ReadNewPassword(ctx, name, flags.interactive);
      if (!read.ok()) return read.status();
      password = *read;
    }
    request.set_name(name);
    request.set_password(password);
    absl::StatusOr<pb::AuthUserAddResponse> r = (*c)->UserAdd(request);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("User ", name, " created\n"), *r, r->header());
  }
  if (sub == "delete") {
    if (absl::Status s = need(1, "user delete command requires user name as its argument");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<pb::AuthUserDeleteResponse> r = (*c)->UserDelete(args[0]);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("User ", args[0], " deleted\n"), *r, r->header());
  }
  if (sub == "get") {
    if (absl::Status s = need(1, "user get command requires user name as its argument"); !s.ok()) {
      return s;
    }
    absl::StatusOr<pb::AuthUserGetResponse> r = (*c)->UserGet(args[0]);
    if (!r.ok()) return r.status();
    if (flags.detail && ctx.format() == Format::kSimple) {
      ctx.io().out << "User: " << args[0] << "\n";
      for (const std::string& role : r->roles()) {
        absl::StatusOr<pb::AuthRoleGetResponse> perms = (*c)->RoleGet(role);
        if (!perms.ok()) return perms.status();
        ctx.io().out << "\n" << RoleGetText(role, *perms);
      }
      return absl::OkStatus();
    }
    std::string simple = absl::StrCat("User: ", args[0], "\nRoles:");
    std::string fields = "\"Roles\" :";
    for (const std::string& role : r->roles()) {
      absl::StrAppend(&simple, " ", role);
      absl::StrAppend(&fields, " ", GoQuote(role));
    }
    return printer.AuthResult(simple + "\n", *r, r->header(), fields + "\n");
  }
  if (sub == "list") {
    if (absl::Status s = need(0, "user list command requires no arguments"); !s.ok()) return s;
    absl::StatusOr<pb::AuthUserListResponse> r = (*c)->UserList();
    if (!r.ok()) return r.status();
    std::string simple, fields = "\"Users\" :";
    for (const std::string& user : r->users()) {
      absl::StrAppend(&simple, user, "\n");
      absl::StrAppend(&fields, " ", GoQuote(user));
    }
    return printer.AuthResult(simple, *r, r->header(), fields + "\n");
  }
  if (sub == "passwd") {
    if (absl::Status s = need(1, "user passwd command requires user name as its argument");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::string> password = ReadNewPassword(ctx, args[0], flags.interactive);
    if (!password.ok()) return password.status();
    absl::StatusOr<pb::AuthUserChangePasswordResponse> r =
        (*c)->UserChangePassword(args[0], *password);
    if (!r.ok()) return r.status();
    return printer.AuthResult("Password updated\n", *r, r->header());
  }
  if (sub == "grant-role" || sub == "revoke-role") {
    const bool grant = sub == "grant-role";
    if (absl::Status s = need(2, grant ? "user grant command requires user name and role name "
                                         "as its argument"
                                       : "user revoke-role requires user name and role name as "
                                         "its argument");
        !s.ok()) {
      return s;
    }
    if (grant) {
      absl::StatusOr<pb::AuthUserGrantRoleResponse> r = (*c)->UserGrantRole(args[0], args[1]);
      if (!r.ok()) return r.status();
      return printer.AuthResult(
          absl::StrCat("Role ", args[1], " is granted to user ", args[0], "\n"), *r, r->header());
    }
    absl::StatusOr<pb::AuthUserRevokeRoleResponse> r = (*c)->UserRevokeRole(args[0], args[1]);
    if (!r.ok()) return r.status();
    return printer.AuthResult(
        absl::StrCat("Role ", args[1], " is revoked from user ", args[0], "\n"), *r, r->header());
  }
  return MakeFailure(kExitBadArgs,
                     "usage: kvctl user add|delete|get|list|passwd|grant-role|revoke-role ...");
}

absl::Status RunRole(Context& ctx, const std::vector<std::string>& positional,
                     const AuthFlags& flags) {
  const std::string sub = positional.empty() ? "" : positional[0];
  const std::vector<std::string> args(positional.begin() + (positional.empty() ? 0 : 1),
                                      positional.end());
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  Printer printer = ctx.printer();
  auto need_name = [&](absl::string_view what) {
    return args.size() == 1
               ? absl::OkStatus()
               : MakeFailure(kExitBadArgs, absl::StrCat("role ", what,
                                                        " command requires role name as its "
                                                        "argument"));
  };
  if (sub == "add") {
    if (absl::Status s = need_name("add"); !s.ok()) return s;
    absl::StatusOr<pb::AuthRoleAddResponse> r = (*c)->RoleAdd(args[0]);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("Role ", args[0], " created\n"), *r, r->header());
  }
  if (sub == "delete") {
    if (absl::Status s = need_name("delete"); !s.ok()) return s;
    absl::StatusOr<pb::AuthRoleDeleteResponse> r = (*c)->RoleDelete(args[0]);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("Role ", args[0], " deleted\n"), *r, r->header());
  }
  if (sub == "get") {
    if (absl::Status s = need_name("get"); !s.ok()) return s;
    absl::StatusOr<pb::AuthRoleGetResponse> r = (*c)->RoleGet(args[0]);
    if (!r.ok()) return r.status();
    std::string fields;
    for (const authpb::Permission& p : r->perm()) {
      absl::StrAppend(&fields, "\"PermType\" :  ", authpb::Permission::Type_Name(p.permtype()),
                      "\n\"Key\" : ", GoQuote(p.key()), "\n\"RangeEnd\" : ", GoQuote(p.range_end()),
                      "\n");
    }
    return printer.AuthResult(RoleGetText(args[0], *r), *r, r->header(), fields);
  }
  if (sub == "list") {
    if (!args.empty()) return MakeFailure(kExitBadArgs, "role list command requires no arguments");
    absl::StatusOr<pb::AuthRoleListResponse> r = (*c)->RoleList();
    if (!r.ok()) return r.status();
    std::string simple, fields = "\"Roles\" :";
    for (const std::string& role : r->roles()) {
      absl::StrAppend(&simple, role, "\n");
      absl::StrAppend(&fields, " ", GoQuote(role));
    }
    return printer.AuthResult(simple, *r, r->header(), fields + "\n");
  }
  if (sub == "grant-permission") {
    if (args.size() < 3) {
      return MakeFailure(kExitBadArgs,
                         "role grant command requires role name, permission type, and key "
                         "[endkey] as its argument");
    }
    const std::string type = absl::AsciiStrToUpper(args[1]);
    authpb::Permission::Type perm_type;
    if (!authpb::Permission::Type_Parse(type, &perm_type)) {
      return MakeFailure(kExitBadArgs, absl::StrCat("invalid permission type: ", args[1]));
    }
    pb::AuthRoleGrantPermissionRequest request;
    request.set_name(args[0]);
    request.mutable_perm()->set_permtype(perm_type);
    std::string key, range_end;
    const std::vector<std::string> range(args.begin() + 2, args.end());
    if (absl::Status s = PermRange(range, flags, &key, &range_end); !s.ok()) return s;
    request.mutable_perm()->set_key(key);
    request.mutable_perm()->set_range_end(range_end);
    absl::StatusOr<pb::AuthRoleGrantPermissionResponse> r = (*c)->RoleGrantPermission(request);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("Role ", args[0], " updated\n"), *r, r->header());
  }
  if (sub == "revoke-permission") {
    if (args.size() < 2) {
      return MakeFailure(kExitBadArgs,
                         "role revoke-permission command requires role name and key [endkey] as "
                         "its argument");
    }
    pb::AuthRoleRevokePermissionRequest request;
    request.set_role(args[0]);
    std::string key, range_end;
    const std::vector<std::string> range(args.begin() + 1, args.end());
    if (absl::Status s = PermRange(range, flags, &key, &range_end); !s.ok()) return s;
    request.set_key(key);
    request.set_range_end(range_end);
    absl::StatusOr<pb::AuthRoleRevokePermissionResponse> r = (*c)->RoleRevokePermission(request);
    if (!r.ok()) return r.status();
    std::string simple;
    if (range_end.empty()) {
      simple = absl::StrCat("Permission of key ", args[1], " is revoked from role ", args[0], "\n");
    } else if (range_end != std::string(1, '\0')) {
      simple = absl::StrCat("Permission of range [", args[1], ", ", range_end,
                            ") is revoked from role ", args[0], "\n");
    } else {
      simple = absl::StrCat("Permission of range [", args[1],
                            ", <open ended> is revoked from role ", args[0], "\n");
    }
    return printer.AuthResult(simple, *r, r->header());
  }
  return MakeFailure(
      kExitBadArgs, "usage: kvctl role add|delete|get|list|grant-permission|revoke-permission ...");
}

}  // namespace kvd::kvctl
