#include "actors/cluster/router_fan_out.hpp"

#include <algorithm>
#include <optional>
#include <string>

namespace adapterd::actors::router {

using messages::errc;

caf::result<messages::cleanup_reply> fan_out_cleanup(router_self self,
                                                     const messages::cleanup_request& req) {
  std::vector<worker_link*> targets;
  for (auto& [address, link] : self->state.links)
    if (req.node.empty() || req.node == address || req.node == link.info.name) {
      if (!req.node.empty() && link.state != link_state::up)
        return make_failure(errc::unavailable,
                            "worker " + req.node + " is " + to_string(link.state));
      if (link.state == link_state::up)
        targets.push_back(&link);
    }
  if (targets.empty() && !req.node.empty())
    return make_failure(errc::bad_request, "no worker is named " + req.node);
  messages::cleanup_reply start;
  start.level = req.level;
  auto merge = [](messages::cleanup_reply& t, messages::cleanup_reply one,
                  const std::string& name) {
    t.gpu_available = t.gpu_available || one.gpu_available;
    t.gpu_allocated_mb += one.gpu_allocated_mb;
    t.gpu_reserved_mb += one.gpu_reserved_mb;
    t.rss_before_bytes += one.rss_before_bytes;
    t.rss_after_bytes += one.rss_after_bytes;
    t.model_unloaded = t.model_unloaded || one.model_unloaded;
    t.freed.adapters += one.freed.adapters;
    t.freed.adapter_bytes += one.freed.adapter_bytes;
    t.freed.models += one.freed.models;
    t.freed.model_bytes += one.freed.model_bytes;
    t.freed.kv_blocks += one.freed.kv_blocks;
    one.node = name;
    t.nodes.push_back(std::move(one));
  };
  auto fail = [](messages::cleanup_reply& t, const messages::failure& f, const std::string& name) {
    messages::cleanup_reply one;
    one.node = name;
    one.status = "error";
    one.error = f.message;
    t.nodes.push_back(std::move(one));
  };
  auto done = [](messages::cleanup_reply& t,
                 size_t answered) -> caf::expected<messages::cleanup_reply> {
    t.status = answered == t.nodes.size() ? "success" : "partial";
    t.message = "Memory cleaned up on " + std::to_string(answered) + " of "
                + std::to_string(t.nodes.size()) + " workers";
    return std::move(t);
  };
  return gather_from_workers(self, targets, std::chrono::seconds(120), std::move(start),
                             messages::cleanup_atom_v, req, merge, fail, done);
}

caf::result<messages::adapter_reply> fan_out_adapters(router_self self,
                                                      const messages::adapter_request& req) {
  auto merge = [](messages::adapter_reply& total, messages::adapter_reply one,
                  const std::string& name) {
    if (total.default_model.empty())
      total.default_model = one.default_model;
    for (auto& m : one.models)
      if (std::none_of(total.models.begin(), total.models.end(),
                       [&](const messages::model_info& held) { return held.name == m.name; }))
        total.models.push_back(m);
    for (auto& a : one.adapters) {
      a.node = name;
      total.adapters.push_back(std::move(a));
    }
  };
  // Every worker failed: the first one's reason.
  auto failure = std::make_shared<std::optional<messages::failure>>();
  auto fail = [failure](messages::adapter_reply&, const messages::failure& f, const std::string&) {
    if (!*failure)
      *failure = f;
  };
  auto done = [failure](messages::adapter_reply& total,
                        size_t answered) -> caf::expected<messages::adapter_reply> {
    if (answered == 0 && *failure)
      return make_failure((*failure)->code, (*failure)->message);
    return std::move(total);
  };
  return gather_from_workers(self, up_workers(self), std::chrono::seconds(120),
                             messages::adapter_reply{}, messages::adapters_atom_v, req, merge, fail,
                             done);
}

caf::result<messages::job_list> fan_out_jobs(router_self self, const messages::job_request& req) {
  auto merge = [](messages::job_list& total, messages::job_list one, const std::string&) {
    for (auto& j : one.jobs)
      total.jobs.push_back(std::move(j));
  };
  auto fail = [](messages::job_list&, const messages::failure&, const std::string&) {
  };  // not there
  auto done = [req](messages::job_list& total, size_t) -> caf::expected<messages::job_list> {
    if (req.action != messages::job_action::list && total.jobs.empty())
      return make_failure(errc::job_not_found, "no training job '" + req.id + "'");
    return std::move(total);
  };
  return gather_from_workers(self, up_workers(self), std::chrono::seconds(60), messages::job_list{},
                             messages::jobs_atom_v, req, merge, fail, done);
}

caf::result<messages::console_feed> console_of(router_self self,
                                               const messages::console_request& req) {
  if (req.node.empty()) {
    messages::console_feed f;
    f.role = "router";
    f.nodes = health_of(self).nodes;
    return f;
  }
  for (auto& [address, link] : self->state.links)
    if (req.node == address || req.node == link.info.name) {
      if (link.state != link_state::up)
        return make_failure(errc::unavailable,
                            "worker " + req.node + " is " + to_string(link.state));
      auto mine = req;
      mine.node.clear();  // to the worker, its own feed
      return self->delegate(link.handle, messages::console_atom_v, std::move(mine));
    }
  return make_failure(errc::bad_request, "no worker is named " + req.node);
}

}  // namespace adapterd::actors::router
