use super::*;
use crate::apply::simulate;
use crate::topology::{self, Topology};
use std::path::{Path, PathBuf};

const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

fn quickstart() -> Topology {
    topology::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart")]).unwrap()
}

fn edited(edit: impl Fn(String) -> String) -> Topology {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/kkp.yaml")).unwrap();
    topology::load_str(Path::new("kkp.yaml"), &edit(text)).unwrap()
}

fn plan(topology: &Topology, state: Option<&State>, now: i64) -> Plan {
    create(topology, state, &|_| None, &Options { now, ..Options::default() }).unwrap()
}

fn applied(topology: &Topology) -> State {
    let mut state = State::new("lineage".into());
    simulate::record(&plan(topology, None, NOW), &mut state, NOW, &mut |_, _| {});
    state
}

fn by_address(plan: &Plan) -> BTreeMap<&str, Action> {
    plan.actions.iter().map(|a| (a.address.as_str(), a.action)).collect()
}

#[test]
fn an_empty_state_creates_everything_in_dependency_order() {
    let topology = quickstart();
    let p = plan(&topology, None, NOW);
    assert_eq!(p.summary.add, render::topology(&topology).len());
    assert!(p.actions.iter().all(|a| a.action == Action::Create));
    let position: HashMap<&Address, usize> = p.actions.iter().enumerate().map(|(i, a)| (&a.address, i)).collect();
    for a in &p.actions {
        for d in &a.deps {
            assert!(position[d] < position[&a.address], "{} is listed before its dependency {d}", a.address);
        }
    }
    let apiserver = p.actions.iter().find(|a| a.address.as_str() == "cluster/qs4k7x2mzp/deployment/apiserver").unwrap();
    assert!(apiserver.deps.iter().any(|d| d.as_str() == "cluster/qs4k7x2mzp/statefulset/etcd"));
}

#[test]
fn an_applied_topology_plans_nothing_even_without_the_fast_path() {
    let topology = quickstart();
    let mut state = applied(&topology);
    assert!(plan(&topology, Some(&state), NOW).summary.is_empty());
    // Forget the recorded input digests: every cluster is rendered and compared node by node.
    state.clusters.clear();
    let p = plan(&topology, Some(&state), NOW);
    assert!(p.summary.is_empty(), "{:?}", by_address(&p));
    assert_eq!(p.summary.unchanged, render::topology(&topology).len());
}

#[test]
fn a_leaf_inside_the_renewal_window_is_reissued_and_its_workloads_roll() {
    let topology = quickstart();
    let state = applied(&topology);
    // 365-day leaves are 12 days from expiry 353 days later.
    let p = plan(&topology, Some(&state), NOW + 353 * DAY);
    let actions = by_address(&p);
    let tls = p.actions.iter().find(|a| a.address.as_str() == "cluster/qs4k7x2mzp/secret/apiserver-tls").unwrap();
    assert_eq!(tls.action, Action::Replace);
    let Reason::Expiring { not_after, window_days: 30 } = tls.reasons[0] else { panic!("{:?}", tls.reasons) };
    assert_eq!((not_after - (NOW + 353 * DAY)).div_euclid(DAY), 12);
    assert_eq!(
        crate::plan::display::describe(&tls.reasons[0]),
        "certificate expires 2027-09-21 14:13 UTC (inside the 30-day renewal window)"
    );
    assert_eq!(actions.get("cluster/qs4k7x2mzp/secret/ca"), None, "CAs are never rotated by time");
    let apiserver = p.actions.iter().find(|a| a.address.as_str() == "cluster/qs4k7x2mzp/deployment/apiserver").unwrap();
    assert_eq!(apiserver.action, Action::Update);
    let Reason::MountsReissued { secrets } = &apiserver.reasons[0] else { panic!("{:?}", apiserver.reasons) };
    assert!(secrets.iter().any(|s| s.as_str() == "cluster/qs4k7x2mzp/secret/apiserver-tls"), "{secrets:?}");
    assert!(apiserver.deps.iter().any(|d| d.as_str() == "cluster/qs4k7x2mzp/secret/apiserver-tls"));
    assert!(!actions.contains_key("cluster/qs4k7x2mzp/service/etcd"));
    // A renewal-only plan is classified as such throughout, so a policy can allow it.
    use crate::plan::classify::{Class, Risk};
    let classes: BTreeSet<Class> = p.actions.iter().map(|a| a.review.class).collect();
    assert_eq!(
        classes,
        BTreeSet::from([Class::CertRenewal]),
        "{:?}",
        p.actions.iter().map(|a| (&a.address, a.review.class)).collect::<Vec<_>>()
    );
    assert!(p.actions.iter().all(|a| a.review.risk == Risk::Low && !a.review.data_loss));
    assert!(tls.review.rolls.contains(&apiserver.address), "{:?}", tls.review.rolls);
    assert_eq!(apiserver.review.human_readable_name.as_deref(), Some("payments"));
}

#[test]
fn changing_the_domain_replaces_the_ca_only_with_permission_and_cascades() {
    let topology = quickstart();
    let state = applied(&topology);
    let moved = edited(|t| t.replace("domain: kkp.example.com", "domain: kkp.example.org"));
    let err = create(&moved, Some(&state), &|_| None, &Options { now: NOW, ..Options::default() }).unwrap_err();
    assert!(matches!(&err, Error::DestroyRefused(list) if list.iter().any(|(a, _)| a.as_str() == "cluster/qs4k7x2mzp/secret/ca")), "{err}");

    let allowed = Options { now: NOW, allow_destroy: vec![Address::parse("cluster").unwrap()], ..Options::default() };
    let p = create(&moved, Some(&state), &|_| None, &allowed).unwrap();
    let actions = by_address(&p);
    assert_eq!(actions["cluster/qs4k7x2mzp/secret/ca"], Action::Replace);
    // Everything the CA signed is re-issued; the front-proxy chain is untouched.
    assert_eq!(actions["cluster/qs4k7x2mzp/secret/prometheus-apiserver-certificate"], Action::Replace);
    assert_eq!(actions.get("cluster/qs4k7x2mzp/secret/apiserver-proxy-client-certificate"), None);
    let ca = p.actions.iter().find(|a| a.address.as_str() == "cluster/qs4k7x2mzp/secret/ca").unwrap();
    assert_eq!((ca.review.class, ca.review.risk), (classify::Class::CaChange, classify::Risk::DataLoss));
    assert!(ca.review.data_loss);
}

#[test]
fn immutable_fields_turn_an_update_into_a_guarded_replace() {
    let topology = quickstart();
    let state = applied(&topology);
    let bodies: HashMap<String, Value> = plan(&topology, None, NOW)
        .actions
        .iter()
        .filter_map(|a| {
            let node = state.nodes.get(&a.address)?;
            let body = a.desired.as_ref()?.body();
            let mut value = recorded_value(&body);
            if let Body::Object { fingerprints, .. } = &body {
                crate::render::fill_fingerprints(&mut value, fingerprints, |s| {
                    state.nodes.get(s)?.certificate.as_ref().map(|c| c.fingerprint.clone())
                });
            }
            Some((node.digest.clone(), value))
        })
        .collect();
    let bigger = edited(|t| t.replace("diskSize: 10Gi", "diskSize: 20Gi"));
    let priors = |d: &str| bodies.get(d).cloned();
    let err = create(&bigger, Some(&state), &priors, &Options { now: NOW, ..Options::default() }).unwrap_err();
    assert!(err.to_string().contains("cluster/qs9d3vh6rt/statefulset/etcd: it holds the cluster's data"), "{err}");
    let allowed =
        Options { now: NOW, allow_destroy: vec![Address::parse("cluster/qs9d3vh6rt/statefulset/etcd").unwrap()], ..Options::default() };
    let p = create(&bigger, Some(&state), &priors, &allowed).unwrap();
    let etcd = p.actions.iter().find(|a| a.address.as_str() == "cluster/qs9d3vh6rt/statefulset/etcd").unwrap();
    assert_eq!(etcd.action, Action::Replace);
    assert!(
        matches!(&etcd.reasons[0], Reason::ImmutableField { path } if path.starts_with("spec.volumeClaimTemplates")),
        "{:?}",
        etcd.reasons
    );
    assert!(etcd.changes.iter().any(|c| c.after == Some(Value::String("20Gi".into()))));
}

#[test]
fn a_plan_streamed_into_its_file_reads_back_whole_with_the_digest_it_was_given() {
    let plan = plan(&quickstart(), None, NOW);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("first.plan");
    let digest = crate::state::file::write_atomic_with(&path, |f| file::write(&plan, f)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (read, read_digest) = file::from_bytes(&path, &bytes).unwrap();
    assert_eq!((read, read_digest.as_str()), (plan.clone(), digest.as_str()));
    assert_eq!(file::digest(&plan), digest, "the digest alone is the saved plan's");
    assert_eq!(file::to_bytes(&plan), (bytes, digest));
    assert!(!dir.path().join("first.plan.tmp").exists());
}

#[test]
fn plans_are_byte_identical_for_the_same_inputs() {
    let topology = quickstart();
    let a = file::to_bytes(&plan(&topology, None, NOW)).0;
    let b = file::to_bytes(&plan(&quickstart(), None, NOW + 5)).0;
    assert_eq!(a, b);
}

#[test]
fn relabelling_a_secret_keeps_its_certificate_and_rolls_nothing() {
    let topology = quickstart();
    let mut state = applied(&topology);
    // Pretend the Secret was applied with other labels: only its labels differ now.
    let ca = Address::parse("cluster/qs4k7x2mzp/secret/apiserver-tls").unwrap();
    state.nodes.get_mut(&ca).unwrap().digest = "sha256:older-labels".into();
    state.clusters.clear();
    let p = plan(&topology, Some(&state), NOW);
    assert_eq!(by_address(&p), BTreeMap::from([("cluster/qs4k7x2mzp/secret/apiserver-tls", Action::Update)]));
    assert_eq!(p.actions[0].reasons, vec![Reason::LabelsChangeCertificateKept]);
}

#[test]
fn a_paused_cluster_is_left_alone_and_the_plan_says_so() {
    let topology = quickstart();
    let state = applied(&topology);
    // Paused and changed: nothing of it is planned, not even the removal of what it no longer renders.
    let paused = edited(|t| {
        t.replace("  humanReadableName: analytics\n", "  humanReadableName: analytics\n  pause: true\n  pauseReason: migration\n")
            .replace("version: 1.33.5", "version: 1.34.2")
    });
    let p = plan(&paused, Some(&state), NOW);
    assert!(p.actions.iter().all(|a| a.cluster.as_deref() != Some("qs9d3vh6rt")), "{:?}", by_address(&p));
    assert_eq!(p.notices, vec![Notice::Paused { cluster: "qs9d3vh6rt".into(), reason: Some("migration".into()) }]);
    assert!(display::human(&p).starts_with("note: cluster qs9d3vh6rt is paused (spec.pause: migration); kkp leaves it as it is\n"));
    // The version change is not planned either.
    assert!(!p.actions.iter().any(|a| a.address.as_str().contains("qs9d3vh6rt")));
    // A paused cluster's record is kept, so unpausing it finds it unchanged.
    assert!(!p.clusters.contains_key("qs9d3vh6rt"));
}

#[test]
fn a_downgrade_is_refused_unless_allowed_for_that_cluster() {
    let topology = quickstart();
    let state = applied(&topology);
    let older = edited(|t| t.replace("version: 1.33.5", "version: 1.33.2"));
    let err = create(&older, Some(&state), &|_| None, &Options { now: NOW, ..Options::default() }).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("kkp.yaml:"), "{message}");
    assert!(message.contains("cluster qs9d3vh6rt: spec.version 1.33.2 is older than the 1.33.5 its control plane runs"), "{message}");
    assert!(message.contains("--allow-downgrade qs9d3vh6rt"), "{message}");
    let allowed = Options { now: NOW, allow_downgrade: vec!["qs9d3vh6rt".into()], ..Options::default() };
    let p = create(&older, Some(&state), &|_| None, &allowed).unwrap();
    assert!(p.actions.iter().any(|a| a.address.as_str() == "cluster/qs9d3vh6rt/deployment/apiserver"));
    // An upgrade to the next minor needs no permission; skipping one is against KKP's rules.
    let newer = edited(|t| t.replace("version: 1.33.5", "version: 1.34.2"));
    assert!(create(&newer, Some(&state), &|_| None, &Options { now: NOW, ..Options::default() }).is_ok());
    let skip = edited(|t| t.replace("version: 1.33.5", "version: 1.35.0"));
    let err = create(&skip, Some(&state), &|_| None, &Options { now: NOW, ..Options::default() }).unwrap_err().to_string();
    assert!(err.contains("cluster qs9d3vh6rt: no update rule allows 1.33.5 -> 1.35.0"), "{err}");
    assert!(err.contains("fix: move the cluster one step at a time"), "{err}");
}

#[test]
fn clusters_on_the_legacy_tunnel_are_named_in_the_plan() {
    let legacy = edited(|t| {
        t.replace("  exposeStrategy: Tunneling\n", "  exposeStrategy: Tunneling\n  clusterNetwork:\n    konnectivityEnabled: false\n")
    });
    let p = plan(&legacy, None, NOW);
    assert_eq!(p.notices, vec![Notice::LegacyTunnel { cluster: "qs9d3vh6rt".into() }]);
    assert!(display::markdown(&p, None).contains("legacy OpenVPN tunnel"));
}

#[test]
fn a_running_clusters_etcd_member_count_cannot_change() {
    let topology = quickstart();
    let state = applied(&topology);
    assert_eq!(state.clusters["qs9d3vh6rt"].etcd_members, Some(5));
    let grown = edited(|t| t.replace("clusterSize: 5", "clusterSize: 7"));
    let err = create(&grown, Some(&state), &|_| None, &Options { now: NOW, ..Options::default() }).unwrap_err().to_string();
    assert!(err.starts_with("kkp.yaml:"), "{err}");
    assert!(err.contains("cluster qs9d3vh6rt: etcd would go from 5 to 7 members"), "{err}");
    assert!(err.contains("fix: set componentsOverride.etcd.clusterSize back to 5"), "{err}");
    // A new cluster takes any size; the other, unchanged cluster is not affected.
    assert!(create(&grown, None, &|_| None, &Options { now: NOW, ..Options::default() }).is_ok());
}

#[test]
fn a_new_ca_bundle_rolls_exactly_the_pods_that_read_it() {
    let topology = quickstart();
    let mut state = State::new("lineage".into());
    let mut bodies: HashMap<String, Value> = HashMap::new();
    simulate::record(&plan(&topology, None, NOW), &mut state, NOW, &mut |digest, body| {
        bodies.insert(digest.to_string(), body.clone());
    });
    let pem = rcgen::generate_simple_self_signed(vec!["corp-ca.example.com".into()]).unwrap().cert.pem();
    let bundle = format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ca-bundle\n  namespace: kubermatic\ndata:\n  ca-bundle.pem: |\n{}",
        pem.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    let with_bundle = edited(|t| format!("{t}\n{bundle}"));
    let p = create(&with_bundle, Some(&state), &|d| bodies.get(d).cloned(), &Options { now: NOW, ..Options::default() }).unwrap();
    let changed: BTreeMap<&str, &PlannedAction> = p.actions.iter().map(|a| (a.address.as_str(), a)).collect();
    assert_eq!(changed["cluster/qs9d3vh6rt/configmap/ca-bundle"].action, Action::Update);
    for workload in ["deployment/apiserver", "deployment/controller-manager", "deployment/scheduler"] {
        let action = changed[format!("cluster/qs9d3vh6rt/{workload}").as_str()];
        assert_eq!(action.action, Action::Update, "{workload}");
        let Reason::FieldsChange { paths } = &action.reasons[0] else { panic!("{workload}: {:?}", action.reasons) };
        assert_eq!(paths, &["spec.template.metadata.annotations[\"fingerprint.kkp.k8c.io/configmap-ca-bundle\"]"], "{workload}");
    }
    // etcd reads no CA bundle: it does not restart.
    assert!(!changed.contains_key("cluster/qs9d3vh6rt/statefulset/etcd"));
    assert!(p.actions.iter().all(|a| a.action == Action::Update), "{:?}", p.actions.iter().map(|a| &a.address).collect::<Vec<_>>());
}

/// A generated fleet of `clusters` on 4 seeds, applied, then upgraded with one cluster moved to
/// another seed and one removed: the plan a reviewer gets on upgrade day.
fn upgrade_day(clusters: usize) -> Plan {
    use crate::topology::generate::{Spec, generate};
    let spec = Spec { seeds: 4, clusters, ..Spec::default() };
    let before = topology::load_str(Path::new("fleet.yaml"), &generate(&spec)).unwrap();
    let mut state = State::new("lineage".into());
    let mut bodies: HashMap<String, Value> = HashMap::new();
    simulate::record(&plan(&before, None, NOW), &mut state, NOW, &mut |digest, body| {
        bodies.insert(digest.to_string(), body.clone());
    });
    let upgraded = generate(&Spec { changed_every: Some(1), ..spec });
    let docs: Vec<String> = upgraded
        .split("---\n")
        .filter(|d| !d.contains("name: c000006\n"))
        .map(|d| if d.contains("name: c000005\n") { d.replace("dc: dc-001-1", "dc: dc-002-0") } else { d.to_string() })
        .collect();
    let after = topology::load_str(Path::new("fleet.yaml"), &docs.join("---\n")).unwrap();
    assert_eq!(after.clusters["c000005"].seed, "seed-002");
    let allow = vec![Address::parse("cluster/c000005").unwrap(), Address::parse("cluster/c000006").unwrap()];
    create(&after, Some(&state), &|digest| bodies.get(digest).cloned(), &Options { now: NOW, allow_destroy: allow, ..Options::default() })
        .unwrap()
}

#[test]
fn fleet_markdown_stays_under_the_comment_limit_and_shows_every_replace_and_destroy() {
    let p = upgrade_day(120);
    let risky: Vec<&PlannedAction> = p.actions.iter().filter(|a| rollup::is_risky(a)).collect();
    assert!(risky.len() > 50, "{}", risky.len());
    assert!(risky.iter().any(|a| a.action == Action::Delete) && risky.iter().any(|a| a.action == Action::Replace));
    let md = display::markdown(&p, Some("sha256:0"));
    assert!(md.chars().count() < 65_536, "{}", md.chars().count());
    for a in &risky {
        assert!(md.contains(&format!(" {} ", a.address)), "{} is not shown", a.address);
    }
    // Replace and destroy come before everything else, and the cut is announced.
    let first_update = md.find("  ~ ").or_else(|| md.find("\n  ~")).unwrap_or(md.len());
    assert!(md.find("-/+ cluster/c000005/statefulset/etcd").unwrap() < first_update);
    assert!(md.contains("sections are left out") && md.contains("kkp show PLANFILE"), "{}", &md[md.len() - 400..]);
    // Identical upgrades fold: the apiservers of the 118 clusters that stay fold into at most two
    // entries (the simulated state cannot know the fingerprints of copied cloud credentials, so
    // the clusters whose apiserver mounts them differ).
    let lines: Vec<&str> = md.lines().collect();
    let folded: Vec<usize> = lines
        .windows(2)
        .filter(|w| w[0].contains("cluster/*/deployment/apiserver "))
        .map(|w| w[1].trim().strip_prefix("on ").and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0))
        .collect();
    assert!(folded.len() <= 2 && folded.iter().sum::<usize>() == 118, "{folded:?}");
    // The per-seed table counts each seed's clusters: the removed one still on seed-001, the moved one
    // on seed-002 (its replacements are made there).
    let table = &md[md.find("#### Per seed").unwrap()..];
    assert!(md.contains("| seed-001 | 31 | 0 | 217 | 0 | 71 |") && md.contains("| seed-002 | 29 | 1 |"), "{}", &table[..400]);
    // The summary view is the roll-ups only, and holds every risky action too.
    let summary = display::human_view(&p, display::Detail::Summary);
    assert!(!summary.contains("Every action, by seed and cluster"));
    assert!(risky.iter().all(|a| summary.contains(&format!(" {} ", a.address))));
    assert!(summary.len() < display::human(&p).len() / 2);
}

#[test]
fn markdown_is_cut_on_a_character_boundary() {
    let p = upgrade_day(8);
    let mut noisy = p.clone();
    // Notices come first and are never left out; only a hard cut can bound them.
    noisy.notices = (0..4000).map(|i| Notice::Paused { cluster: format!("ü-{i}"), reason: Some("ä".repeat(10)) }).collect();
    let md = display::markdown(&noisy, None);
    assert!(md.chars().count() < 65_536);
    assert!(md.ends_with("`kkp show PLANFILE`._\n"));
}

#[test]
fn a_saved_renewal_plan_has_the_same_digest_on_another_day() {
    let topology = quickstart();
    let state = applied(&topology);
    // Two days inside the renewal window of the same certificates: reasons carry the absolute
    // expiry, never "in 12 days", so the plan's bytes do not move with the clock.
    let monday = plan(&topology, Some(&state), NOW + 353 * DAY);
    let tuesday = plan(&topology, Some(&state), NOW + 354 * DAY);
    assert!(!monday.actions.is_empty());
    assert_eq!(file::to_bytes(&monday).1, file::to_bytes(&tuesday).1);
}

#[test]
fn targeting_a_seed_includes_the_clusters_it_hosts() {
    let topology = topology::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/multi-seed")]).unwrap();
    let options = Options { now: NOW, targets: vec![Address::parse("seed/seed-us").unwrap()], ..Options::default() };
    let p = create(&topology, None, &|_| None, &options).unwrap();
    let clusters: BTreeSet<&str> = p.actions.iter().filter_map(|a| a.cluster.as_deref()).collect();
    let on_us: BTreeSet<&str> = topology.clusters.values().filter(|c| c.seed == "seed-us").map(|c| c.name.as_str()).collect();
    assert!(!on_us.is_empty());
    assert_eq!(clusters, on_us);
    assert!(p.actions.iter().all(|a| a.seed == "seed-us"), "nothing of another seed");
}

#[test]
fn clusters_planned_apart_make_one_plan_ordered_and_classified_as_a_whole() {
    let p = upgrade_day(40);
    let position: HashMap<&Address, usize> = p.actions.iter().enumerate().map(|(i, a)| (&a.address, i)).collect();
    assert_eq!(position.len(), p.actions.len(), "every address once");
    for a in &p.actions {
        for d in &a.deps {
            assert!(position[d] < position[&a.address], "{} is listed before its dependency {d}", a.address);
        }
    }
    // Grouped by seed, the seed's own nodes first, then its clusters by name; a moved cluster
    // is planned whole on its new seed.
    assert!(p.actions.windows(2).all(|w| group_key(&w[0]) <= group_key(&w[1])));
    let moved: BTreeSet<&str> = p.actions.iter().filter(|a| a.cluster.as_deref() == Some("c000005")).map(|a| a.seed.as_str()).collect();
    assert_eq!(moved, BTreeSet::from(["seed-002"]));
    assert!(p.actions.iter().any(|a| a.cluster.as_deref() == Some("c000006") && a.action == Action::Delete));
    // What each cluster's worker classified is what apply and policies get from the whole.
    let whole = classify::classify_all(&p.actions, &classify::Context::of_plan(&p));
    for (a, review) in p.actions.iter().zip(whole) {
        assert_eq!(a.review, review, "{}", a.address);
    }
    assert!(p.actions.iter().any(|a| !a.review.rolls.is_empty()), "the upgrade rolls workloads");
}

#[test]
fn a_plan_only_shown_decides_as_the_plan_that_is_saved() {
    let topology = topology::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/multi-seed")]).unwrap();
    let shown_and_saved = |state: Option<&State>, now: i64| {
        let plan = |without_bodies| create(&topology, state, &|_| None, &Options { now, without_bodies, ..Options::default() }).unwrap();
        let (mut shown, mut saved) = (plan(true), plan(false));
        assert!(shown.actions.iter().all(|a| a.desired.is_none()));
        assert!(saved.actions.iter().all(|a| a.action == Action::Delete || a.desired.is_some()));
        for a in shown.actions.iter_mut().chain(&mut saved.actions) {
            a.desired = None;
        }
        (shown, saved)
    };
    // New clusters (no fingerprints worked out when shown), and renewals of applied ones.
    let (shown, saved) = shown_and_saved(None, NOW);
    assert_eq!(shown.actions, saved.actions);
    let state = applied(&topology);
    let (shown, saved) = shown_and_saved(Some(&state), NOW + 353 * DAY);
    assert!(saved.actions.iter().any(|a| matches!(a.reasons[0], Reason::MountsReissued { .. })));
    assert_eq!(shown, saved);
}
