//! The catalog: products a partner can run and the plans that allow them.
//!
//! Loaded from TOML (the operator's file, or the default compiled in from
//! `default_catalog.toml`) and validated once; every lookup after that is infallible or `None`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::values::{BillingInterval, Currency};

/// A plan's monthly allowance of runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLimit {
    Limited(u32),
    Unlimited,
}

impl RunLimit {
    /// The wire form: the limit, or `-1` for unlimited.
    pub fn as_wire(self) -> i64 {
        match self {
            Self::Limited(n) => i64::from(n),
            Self::Unlimited => -1,
        }
    }
}

/// A plan identifier such as `professional`. Well-formed, not necessarily in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanId(String);

impl PlanId {
    pub fn parse(raw: &str) -> Result<Self, CatalogError> {
        if is_slug(raw) { Ok(Self(raw.to_owned())) } else { Err(CatalogError::BadId(raw.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product identifier such as `essential-eight`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProductId(String);

impl ProductId {
    pub fn parse(raw: &str) -> Result<Self, CatalogError> {
        if is_slug(raw) { Ok(Self(raw.to_owned())) } else { Err(CatalogError::BadId(raw.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_slug(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub category: String,
    /// Typical run time in seconds.
    pub estimated_duration: u32,
    /// Maturity target (1–5) used when a trigger does not give one.
    pub default_maturity_target: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: PlanId,
    pub run_limit: RunLimit,
    /// Products in catalog order.
    pub products: Vec<ProductId>,
    /// Price of one billing period. A missing entry means the plan is not sold on those terms.
    pub prices: HashMap<(BillingInterval, Currency), Decimal>,
}

impl Plan {
    pub fn allows(&self, product: &ProductId) -> bool {
        self.products.contains(product)
    }

    pub fn price(&self, interval: BillingInterval, currency: Currency) -> Option<Decimal> {
        self.prices.get(&(interval, currency)).copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid TOML: {0}")]
    Syntax(String),
    #[error("`{0}` is not a valid identifier (lower-case letters, digits and dashes)")]
    BadId(String),
    #[error("{0} is listed twice")]
    Duplicate(String),
    #[error("plan {plan} names unknown product {product}")]
    UnknownProduct { plan: String, product: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    products: Vec<Product>,
    plans: Vec<Plan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    products: Vec<ProductEntry>,
    plans: Vec<PlanEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductEntry {
    id: String,
    name: String,
    category: String,
    estimated_duration: u32,
    default_maturity_target: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanEntry {
    id: String,
    run_limit: i64,
    products: Vec<String>,
    #[serde(default)]
    prices: BTreeMap<String, BTreeMap<String, String>>,
}

/// Reads `[plans.prices]`: interval → currency → decimal string, non-negative, cents at most.
fn parse_prices(
    plan: &PlanId,
    raw: BTreeMap<String, BTreeMap<String, String>>,
) -> Result<HashMap<(BillingInterval, Currency), Decimal>, CatalogError> {
    let bad = |what: String| CatalogError::Invalid(format!("plan {plan}: {what}"));
    let mut prices = HashMap::new();
    for (interval, by_currency) in raw {
        let interval =
            BillingInterval::from_str(&interval).map_err(|e| bad(format!("price interval {interval} {}", e.reason)))?;
        for (currency, amount) in by_currency {
            let currency =
                Currency::from_str(&currency).map_err(|e| bad(format!("price currency {currency} {}", e.reason)))?;
            let amount = Decimal::from_str(&amount)
                .ok()
                .filter(|a| !a.is_sign_negative() && a.scale() <= currency.minor_unit_scale())
                .ok_or_else(|| bad(format!("price {amount} is not a non-negative amount with at most two decimals")))?;
            prices.insert((interval, currency), amount);
        }
    }
    Ok(prices)
}

const DEFAULT_CATALOG: &str = include_str!("default_catalog.toml");

impl Default for Catalog {
    fn default() -> Self {
        Self::from_toml(DEFAULT_CATALOG).expect("the compiled-in catalog is valid")
    }
}

impl Catalog {
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Syntax(e.to_string()))?;
        let mut seen = HashSet::new();
        let mut products = Vec::with_capacity(file.products.len());
        for p in file.products {
            let id = ProductId::parse(&p.id)?;
            if !seen.insert(p.id.clone()) {
                return Err(CatalogError::Duplicate(p.id));
            }
            if !(1..=5).contains(&p.default_maturity_target) {
                return Err(CatalogError::Invalid(format!("product {id}: default_maturity_target must be 1–5")));
            }
            products.push(Product {
                id,
                name: p.name,
                category: p.category,
                estimated_duration: p.estimated_duration,
                default_maturity_target: p.default_maturity_target,
            });
        }
        let mut plans = Vec::with_capacity(file.plans.len());
        for p in file.plans {
            let id = PlanId::parse(&p.id)?;
            if plans.iter().any(|existing: &Plan| existing.id == id) {
                return Err(CatalogError::Duplicate(p.id));
            }
            let run_limit = match p.run_limit {
                -1 => RunLimit::Unlimited,
                n => RunLimit::Limited(u32::try_from(n).map_err(|_| {
                    CatalogError::Invalid(format!("plan {id}: run_limit must be -1 or 0..=4294967295"))
                })?),
            };
            let mut allowed = Vec::with_capacity(p.products.len());
            for product in p.products {
                if !seen.contains(&product) {
                    return Err(CatalogError::UnknownProduct { plan: p.id.clone(), product });
                }
                allowed.push(ProductId(product));
            }
            let prices = parse_prices(&id, p.prices)?;
            plans.push(Plan { id, run_limit, products: allowed, prices });
        }
        if plans.is_empty() {
            return Err(CatalogError::Invalid("the catalog has no plans".into()));
        }
        Ok(Self { products, plans })
    }

    pub fn plan(&self, id: &PlanId) -> Option<&Plan> {
        self.plans.iter().find(|p| &p.id == id)
    }

    pub fn product(&self, id: &ProductId) -> Option<&Product> {
        self.products.iter().find(|p| &p.id == id)
    }

    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The products a plan allows, in catalog order.
    pub fn products_of<'a>(&'a self, plan: &'a Plan) -> impl Iterator<Item = &'a Product> + 'a {
        self.products.iter().filter(move |p| plan.allows(&p.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(catalog: &Catalog, id: &str) -> Plan {
        catalog.plan(&PlanId::parse(id).unwrap()).unwrap().clone()
    }

    #[test]
    fn default_catalog_matches_the_design() {
        let c = Catalog::default();
        assert_eq!(c.products().len(), 4);
        assert_eq!(plan(&c, "starter").run_limit, RunLimit::Limited(50));
        assert_eq!(plan(&c, "professional").run_limit, RunLimit::Limited(200));
        assert_eq!(plan(&c, "enterprise").run_limit, RunLimit::Unlimited);
        let names = |p: &Plan| p.products.iter().map(|x| x.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&plan(&c, "starter")), ["essential-eight"]);
        assert_eq!(names(&plan(&c, "professional")), ["essential-eight", "nist-csf"]);
        assert_eq!(plan(&c, "enterprise").products.len(), 4);
        assert_eq!(RunLimit::Unlimited.as_wire(), -1);
    }

    #[test]
    fn default_catalog_prices_every_plan_in_every_currency_and_interval() {
        use rust_decimal::dec;
        let c = Catalog::default();
        for p in c.plans() {
            for interval in [BillingInterval::Monthly, BillingInterval::Quarterly, BillingInterval::Annual] {
                for currency in Currency::ALL {
                    assert!(p.price(interval, currency).is_some(), "{} {interval:?} {currency}", p.id);
                }
            }
        }
        assert_eq!(plan(&c, "professional").price(BillingInterval::Monthly, Currency::Aud), Some(dec!(449.00)));
        assert_eq!(plan(&c, "starter").price(BillingInterval::Quarterly, Currency::Usd), Some(dec!(282.15)));
    }

    #[test]
    fn malformed_prices_are_refused() {
        let base = "[[products]]\nid='a'\nname='A'\ncategory='c'\nestimated_duration=1\ndefault_maturity_target=1\n[[plans]]\nid='p'\nrun_limit=1\nproducts=['a']\n[plans.prices]\n";
        for bad in [
            "monthly = { USD = '-1.00' }",
            "monthly = { USD = '1.001' }",
            "monthly = { JPY = '1' }",
            "weekly = { USD = '1' }",
            "monthly = { USD = 'ten' }",
        ] {
            assert!(matches!(Catalog::from_toml(&format!("{base}{bad}")), Err(CatalogError::Invalid(_))), "{bad}");
        }
        assert!(Catalog::from_toml(&format!("{base}monthly = {{ usd = '10' }}")).is_ok());
    }

    #[test]
    fn invalid_catalogs_are_refused_with_a_reason() {
        let unknown = "[[products]]\nid='a'\nname='A'\ncategory='c'\nestimated_duration=1\ndefault_maturity_target=1\n[[plans]]\nid='p'\nrun_limit=1\nproducts=['b']";
        assert_eq!(
            Catalog::from_toml(unknown),
            Err(CatalogError::UnknownProduct { plan: "p".into(), product: "b".into() })
        );
        let negative = unknown.replace("run_limit=1", "run_limit=-5").replace("['b']", "['a']");
        assert!(matches!(Catalog::from_toml(&negative), Err(CatalogError::Invalid(_))));
        assert!(matches!(Catalog::from_toml("products = 3"), Err(CatalogError::Syntax(_))));
    }
}
