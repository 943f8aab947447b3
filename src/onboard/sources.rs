//! Where `opsdeck init` finds the hosts to look at: the concrete `Host` entries of an
//! ssh_config, an Ansible inventory (INI or YAML), or destinations named on the command
//! line. These files are the operator's own, but a name from them ends up in a TOML file
//! and on a terminal, so a name that is not a plain printable word is refused with a reason.

use std::collections::BTreeMap;

/// A host to look at, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidate {
    /// The inventory name (an ssh_config alias, an Ansible host name, or the destination).
    pub name: String,
    /// What goes into `address`: an ssh_config alias stays an alias (ssh_config keeps
    /// supplying HostName, User, Port and IdentityFile, as it does for ssh).
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    pub jump: Option<String>,
    /// Where the host came from, for the comment above it: `~/.ssh/config`,
    /// `inventory.yml (group web)`, `the command line`.
    pub origin: String,
    /// What ssh_config resolves the alias to (`cs@127.0.0.11:22`), for that comment.
    pub resolved: Option<String>,
}

/// A name fit for the inventory and a terminal: no whitespace, no control or
/// bidirectional characters, at most 64 characters, not starting with `-`.
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an empty name".into());
    }
    if name.chars().count() > 64 {
        return Err("a name longer than 64 characters".into());
    }
    if name.starts_with('-') {
        return Err("a name starting with '-'".into());
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || crate::sanitize::is_unsafe(c) || c == '"' || c == '\\')
    {
        return Err("a name with spaces, quotes or control characters".into());
    }
    Ok(())
}

/// Whether an ssh_config `Host` pattern names one host rather than a set of them.
fn concrete(pattern: &str) -> bool {
    !pattern.is_empty() && !pattern.contains(['*', '?', '!', '%'])
}

/// The concrete aliases of an ssh_config, in file order, each once: `Host *`, wildcards
/// and negations are patterns, not hosts.
pub fn from_ssh_config(cfg: &ssh2_config::SshConfig) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for host in cfg.get_hosts() {
        for clause in &host.pattern {
            if clause.negated || !concrete(&clause.pattern) {
                continue;
            }
            if out.iter().any(|c| c.name == clause.pattern) {
                continue;
            }
            let params = cfg.query(&clause.pattern);
            let hostname = params
                .host_name
                .clone()
                .unwrap_or_else(|| clause.pattern.clone());
            let resolved = format!(
                "{}{hostname}:{}",
                params
                    .user
                    .as_ref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default(),
                params.port.unwrap_or(22)
            );
            out.push(Candidate {
                name: clause.pattern.clone(),
                address: clause.pattern.clone(),
                origin: "~/.ssh/config".into(),
                resolved: Some(resolved),
                ..Candidate::default()
            });
        }
    }
    out
}

/// `[user@]host[:port]` from the command line. An ssh_config alias keeps being one.
pub fn from_destination(spec: &str) -> Candidate {
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => (h, p.parse().ok()),
        _ => (rest, None),
    };
    Candidate {
        name: host.to_string(),
        address: host.to_string(),
        user,
        port,
        origin: "the command line".into(),
        ..Candidate::default()
    }
}

/// Ansible's connection variables, from a host's and its groups' vars.
#[derive(Debug, Clone, Default)]
struct Vars(BTreeMap<String, String>);

impl Vars {
    fn merged(&self, over: &Vars) -> Vars {
        let mut m = self.0.clone();
        m.extend(over.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        Vars(m)
    }
}

fn candidate(name: &str, vars: &Vars, origin: String) -> Candidate {
    let get = |k: &str| vars.0.get(k).cloned().filter(|v| !v.is_empty());
    let jump = get("ansible_ssh_common_args").and_then(|a| proxy_jump(&a));
    Candidate {
        name: name.to_string(),
        address: get("ansible_host")
            .or_else(|| get("ansible_ssh_host"))
            .unwrap_or_else(|| name.to_string()),
        user: get("ansible_user").or_else(|| get("ansible_ssh_user")),
        port: get("ansible_port")
            .or_else(|| get("ansible_ssh_port"))
            .and_then(|p| p.parse().ok()),
        identity_file: get("ansible_ssh_private_key_file")
            .or_else(|| get("ansible_private_key_file")),
        jump,
        origin,
        resolved: None,
    }
}

/// `-J host` or `-o ProxyJump=host` in `ansible_ssh_common_args`.
fn proxy_jump(args: &str) -> Option<String> {
    let words = shlex::split(args)?;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == "-J" {
            return it.next().cloned();
        }
        if let Some(v) = w.strip_prefix("-J") {
            return Some(v.to_string());
        }
        let opt = if w == "-o" {
            it.next().map(String::as_str)
        } else {
            w.strip_prefix("-o")
        };
        if let Some((k, v)) = opt.and_then(|o| o.split_once(['=', ' ']))
            && k.eq_ignore_ascii_case("proxyjump")
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// An Ansible inventory: YAML when it parses as a YAML mapping, else INI.
pub fn from_ansible(text: &str, file: &str) -> Result<Vec<Candidate>, String> {
    let trimmed = text.trim_start();
    let looks_ini = trimmed.starts_with('[') || trimmed.lines().all(|l| !l.contains(": "));
    if !looks_ini
        && let Ok(v) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
        && v.is_mapping()
    {
        return from_ansible_yaml(&v, file);
    }
    from_ansible_ini(text, file)
}

fn scalar(v: &serde_yaml_ng::Value) -> Option<String> {
    use serde_yaml_ng::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn yaml_vars(v: Option<&serde_yaml_ng::Value>) -> Vars {
    let mut m = BTreeMap::new();
    if let Some(map) = v.and_then(|v| v.as_mapping()) {
        for (k, v) in map {
            if let (Some(k), Some(v)) = (k.as_str(), scalar(v)) {
                m.insert(k.to_string(), v);
            }
        }
    }
    Vars(m)
}

/// Hosts of a YAML inventory, in document order: a host's own vars over its groups'
/// (children inherit their parents' vars), the first group a host appears in named.
fn from_ansible_yaml(root: &serde_yaml_ng::Value, file: &str) -> Result<Vec<Candidate>, String> {
    let mut hosts: Vec<(String, Vars, String)> = Vec::new();
    let groups = root
        .as_mapping()
        .ok_or_else(|| format!("{file}: not an inventory (a mapping of groups)"))?;
    for (name, group) in groups {
        let Some(name) = name.as_str() else { continue };
        walk_yaml(name, group, &Vars::default(), file, &mut hosts, 0)?;
    }
    Ok(hosts
        .into_iter()
        .map(|(name, vars, origin)| candidate(&name, &vars, origin))
        .collect())
}

fn walk_yaml(
    group: &str,
    node: &serde_yaml_ng::Value,
    inherited: &Vars,
    file: &str,
    out: &mut Vec<(String, Vars, String)>,
    depth: usize,
) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("{file}: groups nested deeper than 32"));
    }
    let vars = inherited.merged(&yaml_vars(node.get("vars")));
    if let Some(hosts) = node.get("hosts").and_then(|h| h.as_mapping()) {
        for (h, hv) in hosts {
            let Some(h) = h.as_str() else { continue };
            let own = vars.merged(&yaml_vars(Some(hv)));
            match out.iter_mut().find(|(n, _, _)| n == h) {
                Some((_, v, _)) => *v = own.merged(v),
                None => out.push((h.to_string(), own, format!("{file} (group {group})"))),
            }
        }
    }
    if let Some(children) = node.get("children").and_then(|c| c.as_mapping()) {
        for (c, cv) in children {
            let Some(c) = c.as_str() else { continue };
            walk_yaml(c, cv, &vars, file, out, depth + 1)?;
        }
    }
    Ok(())
}

/// Hosts of an INI inventory: `host key=value ...` lines under `[group]`, `[group:vars]`
/// sections, `[group:children]` (whose groups inherit the parent's vars).
fn from_ansible_ini(text: &str, file: &str) -> Result<Vec<Candidate>, String> {
    #[derive(Default)]
    struct Group {
        hosts: Vec<(String, Vars)>,
        vars: Vars,
        children: Vec<String>,
    }
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut section = ("ungrouped".to_string(), "hosts");
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[') {
            let head = head
                .strip_suffix(']')
                .ok_or_else(|| format!("{file}:{}: a section header without ']'", i + 1))?;
            let (g, kind) = match head.split_once(':') {
                Some((g, "vars")) => (g, "vars"),
                Some((g, "children")) => (g, "children"),
                Some((_, k)) => {
                    return Err(format!("{file}:{}: unknown section kind {k:?}", i + 1));
                }
                None => (head, "hosts"),
            };
            section = (g.to_string(), kind);
            if !order.contains(&section.0) {
                order.push(section.0.clone());
            }
            continue;
        }
        let g = groups.entry(section.0.clone()).or_default();
        match section.1 {
            "vars" => {
                if let Some((k, v)) = line.split_once('=') {
                    g.vars.0.insert(k.trim().into(), unquote(v.trim()));
                }
            }
            "children" => g.children.push(line.to_string()),
            _ => {
                let words = shlex::split(line)
                    .ok_or_else(|| format!("{file}:{}: unbalanced quotes", i + 1))?;
                let Some((host, rest)) = words.split_first() else {
                    continue;
                };
                if host.contains('[') {
                    return Err(format!(
                        "{file}:{}: host ranges like {host:?} are not supported: list the hosts",
                        i + 1
                    ));
                }
                let mut vars = Vars::default();
                for w in rest {
                    if let Some((k, v)) = w.split_once('=') {
                        vars.0.insert(k.to_string(), v.to_string());
                    }
                }
                g.hosts.push((host.clone(), vars));
            }
        }
    }
    if !order.contains(&"ungrouped".to_string()) {
        order.insert(0, "ungrouped".into());
    }
    // Each group's effective vars: its own over its parents' (`all` under everything).
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, g) in &groups {
        for c in &g.children {
            parents.entry(c.clone()).or_default().push(name.clone());
        }
    }
    fn effective(
        name: &str,
        groups: &BTreeMap<String, Group>,
        parents: &BTreeMap<String, Vec<String>>,
        depth: usize,
    ) -> Vars {
        let own = groups.get(name).map(|g| g.vars.clone()).unwrap_or_default();
        let mut base = if name == "all" {
            Vars::default()
        } else {
            groups
                .get("all")
                .map(|g| g.vars.clone())
                .unwrap_or_default()
        };
        if depth < 32 {
            for p in parents.get(name).into_iter().flatten() {
                base = base.merged(&effective(p, groups, parents, depth + 1));
            }
        }
        base.merged(&own)
    }
    let mut out: Vec<(String, Vars, String)> = Vec::new();
    for name in &order {
        let Some(g) = groups.get(name) else { continue };
        let gv = effective(name, &groups, &parents, 0);
        for (h, hv) in &g.hosts {
            let own = gv.merged(hv);
            match out.iter_mut().find(|(n, _, _)| n == h) {
                Some((_, v, _)) => *v = own.merged(v),
                None => out.push((h.clone(), own, format!("{file} (group {name})"))),
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(name, vars, origin)| candidate(&name, &vars, origin))
        .collect())
}

fn unquote(v: &str) -> String {
    shlex::split(v)
        .filter(|w| w.len() == 1)
        .and_then(|mut w| w.pop())
        .unwrap_or_else(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh(text: &str) -> ssh2_config::SshConfig {
        ssh2_config::SshConfig::default()
            .parse(&mut text.as_bytes(), crate::remote::ssh::PARSE_RULES)
            .unwrap_or_default()
    }

    #[test]
    fn ssh_config_gives_concrete_aliases_once_in_order() {
        let cfg = ssh(
            "Host web1 web2\n  HostName 10.0.0.1\n  User deploy\n  Port 2222\n\
             Host *.internal !bastion\n  User x\n\
             Host db\n  HostName 10.0.0.9\n\
             Host web1\n  User other\n\
             Host *\n  IdentityFile ~/.ssh/id_ed25519\n",
        );
        let c = from_ssh_config(&cfg);
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["web1", "web2", "db"]);
        assert_eq!(c[0].address, "web1");
        assert_eq!(c[0].resolved.as_deref(), Some("deploy@10.0.0.1:2222"));
        assert_eq!(c[2].resolved.as_deref(), Some("10.0.0.9:22"));
    }

    #[test]
    fn destinations_split_user_and_port() {
        let c = from_destination("alice@vps1:2222");
        assert_eq!(
            (c.name.as_str(), c.user.as_deref(), c.port),
            ("vps1", Some("alice"), Some(2222))
        );
        let c = from_destination("vps2");
        assert_eq!((c.address.as_str(), c.user, c.port), ("vps2", None, None));
    }

    #[test]
    fn yaml_inventory_with_groups_children_and_vars() {
        let text = "all:\n  vars:\n    ansible_user: deploy\n  hosts:\n    solo:\n      ansible_host: 10.0.0.5\n  children:\n    web:\n      vars:\n        ansible_port: 2222\n        ansible_ssh_private_key_file: ~/.ssh/web\n      hosts:\n        web1:\n          ansible_host: 10.0.1.1\n          ansible_user: root\n        web2: {}\n    db:\n      hosts:\n        db1:\n          ansible_host: 10.0.2.1\n          ansible_ssh_common_args: '-o ProxyJump=bastion.example'\n";
        let c = from_ansible(text, "inv.yml").expect("parses");
        let by = |n: &str| c.iter().find(|c| c.name == n).cloned().expect(n);
        assert_eq!(c.len(), 4);
        assert_eq!(by("solo").address, "10.0.0.5");
        assert_eq!(by("solo").user.as_deref(), Some("deploy"));
        let w1 = by("web1");
        assert_eq!(
            (w1.address.as_str(), w1.user.as_deref(), w1.port),
            ("10.0.1.1", Some("root"), Some(2222))
        );
        assert_eq!(w1.identity_file.as_deref(), Some("~/.ssh/web"));
        assert_eq!(w1.origin, "inv.yml (group web)");
        let w2 = by("web2");
        assert_eq!(
            (w2.address.as_str(), w2.user.as_deref()),
            ("web2", Some("deploy"))
        );
        assert_eq!(by("db1").jump.as_deref(), Some("bastion.example"));
    }

    #[test]
    fn ini_inventory_with_vars_children_and_all() {
        let text = "# fleet\nlonely ansible_host=10.9.9.9\n\n[web]\nweb1 ansible_host=10.0.1.1 ansible_port=2200\nweb2\n\n[web:vars]\nansible_user=deploy\n\n[prod:children]\nweb\n\n[prod:vars]\nansible_ssh_private_key_file=\"~/.ssh/prod key\"\nansible_user=ignored\n\n[all:vars]\nansible_port=22\n";
        let c = from_ansible(text, "hosts.ini").expect("parses");
        let by = |n: &str| c.iter().find(|c| c.name == n).cloned().expect(n);
        assert_eq!(c.len(), 3);
        assert_eq!(by("lonely").port, Some(22));
        let w1 = by("web1");
        assert_eq!(
            (w1.address.as_str(), w1.user.as_deref(), w1.port),
            ("10.0.1.1", Some("deploy"), Some(2200))
        );
        assert_eq!(w1.identity_file.as_deref(), Some("~/.ssh/prod key"));
        assert_eq!(by("web2").user.as_deref(), Some("deploy"));
        assert!(from_ansible("[web]\nweb[01:10].example\n", "x").is_err());
        assert!(from_ansible("[web\nx\n", "x").is_err());
    }

    #[test]
    fn names_that_cannot_be_written_are_refused() {
        assert!(valid_name("web-1.example").is_ok());
        for bad in ["", "a b", "-x", "a\u{1b}[2J", "a\"b", "a\u{202e}b"] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
    }
}
