//! Event bodies for the end-to-end tests, in the contract's shape.

#![allow(dead_code)]

use serde_json::{Value, json};

pub fn envelope(id: &str, event_type: &str, subject: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/e2e", "type": event_type, "subject": subject, "data": data})
}

pub fn request(id: &str) -> Value {
    json!({"request_id": id, "organisation": {"name": "De Fietsfabriek", "kvk": "01234567", "region": "NL324"},
           "title": "Refurbished bikes", "summary": "", "amount_eur": 150000, "instruments": ["loan"],
           "stage": "early_revenue", "impact_themes": [8, 12], "certifications": []})
}

pub fn mandate(id: &str) -> Value {
    json!({"mandate_id": id, "financier": {"name": "Bank", "kind": "bank"}, "ticket_min_eur": 50000,
           "ticket_max_eur": 200000, "instruments": ["loan"], "stages": ["early_revenue"],
           "impact_themes": [], "regions": ["NL"], "required_certifications": [], "co_financing": false})
}

pub fn submitted(event_id: &str, request_id: &str) -> Value {
    envelope(event_id, "tafel.request.submitted", request_id, request(request_id))
}
