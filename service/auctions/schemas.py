"""HTTP schemas of the auction API (the contract other teams and clients rely on)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from service.errors import ErrorDetail, ErrorResponse
from service.settings import Bounds

# Ids and titles appear inside markers "@Title@[ID]": keep them free of the marker's own characters.
AdId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", min_length=1, max_length=Bounds.MAX_ID_CHARS)
]
AdTitle = Annotated[
    str,
    StringConstraints(
        pattern=r"^[^@\[\]\x00-\x1f\x7f]*[^@\[\]\s][^@\[\]\x00-\x1f\x7f]*$",
        min_length=1,
        max_length=Bounds.MAX_TITLE_CHARS,
    ),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Advertiser(StrictModel):
    id: Annotated[str, StringConstraints(min_length=1, max_length=Bounds.MAX_ID_CHARS)]
    kind: Literal["UM", "VM"] = Field(
        default="UM", description="UM: utility maximiser; VM: value maximiser with an ROI target"
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="Display name, shown in the ad's disclosure (who pays for it)"
    )
    target_roi: Annotated[float, Field(strict=True, ge=1, le=1000)] = Field(
        default=1.0,
        description="VM's target value/cost ratio τ ≥ 1 (the paper's assumption, under which first price is IR): "
        "a VM bids v/τ and pays its bid per click, so the implied value per click is τ·bid",
    )


class AdCandidate(StrictModel):
    id: AdId
    title: AdTitle = Field(description='Shown verbatim; may not contain "@", "[", "]" or control characters')
    url: Annotated[AnyHttpUrl, Field(description="Landing page (http/https)")]
    bid: Annotated[float, Field(strict=True, ge=0, le=Bounds.MAX_BID, allow_inf_nan=False)] = Field(
        description="Value per click, currency units; rounded to cents"
    )
    advertiser: Advertiser | None = None
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="The ad's category (publisher blocks, topic rules); default: from the landing URL"
    )

    @field_validator("url")
    @classmethod
    def _url_length(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(url)) > Bounds.MAX_URL_CHARS:
            raise ValueError(f"url is longer than {Bounds.MAX_URL_CHARS} characters")
        return url

    @field_validator("bid")
    @classmethod
    def _cents(cls, bid: float) -> float:
        return round(bid, 2)


class User(StrictModel):
    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    profile: dict[str, Any] = Field(default_factory=dict, description="Free-form, shown to the model as JSON")

    @field_validator("profile")
    @classmethod
    def _profile_size(cls, profile: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(profile, ensure_ascii=False, separators=(",", ":"))) > Bounds.MAX_PROFILE_CHARS:
            raise ValueError(f"profile is larger than {Bounds.MAX_PROFILE_CHARS} characters of JSON")
        return profile


class AuctionOptions(StrictModel):
    samples: Annotated[int, Field(strict=True, ge=1, le=Bounds.MAX_SAMPLES)] | None = Field(
        default=None, description="K, the number of parallel samples"
    )
    max_tokens: Annotated[int, Field(strict=True, ge=1, le=Bounds.MAX_TOKENS)] | None = None
    temperature: Annotated[float, Field(strict=True, gt=0, le=2)] | None = None
    top_p: Annotated[float, Field(strict=True, gt=0, le=1)] | None = None
    seed: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)] | None = Field(
        default=None, description="Same seed and request ⇒ same K samples"
    )
    return_samples: StrictBool = Field(default=False, description="Include all K raw samples (debugging, audits)")
    selection: Literal["optimal", "uniform"] | None = Field(
        default=None, description="Which sample is served: the objective's optimum (softmax at T) or uniform"
    )
    selection_temperature: Annotated[float, Field(strict=True, ge=0.01, le=1e6)] | None = Field(
        default=None, description="T of the optimal selection, in the units of the objective"
    )
    payment_rule: Literal["first_price", "myerson"] | None = None
    bids_in_prompt: StrictBool | None = Field(
        default=None, description="false: the bid-blind proposal (the prompt lists the ads without bids)"
    )
    constrain_markers: StrictBool | None = Field(
        default=None, description="false: unconstrained decoding (raw samples, broken markers and all)"
    )
    relevance_floor: StrictBool | None = Field(
        default=None, description="true: only ads that fit the question can be placed (needs constrain_markers)"
    )
    reserve_price: Annotated[float, Field(strict=True, ge=0, le=Bounds.MAX_BID)] | None = Field(
        default=None, description="Floor per click: ads bidding below it are ineligible (with the deployment's)"
    )
    blocked_categories: Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=64)] = Field(
        default_factory=list, description="Ad categories this publisher does not show"
    )
    allocation_curve: (
        Annotated[list[Annotated[float, Field(strict=True, ge=0, le=Bounds.MAX_BID)]], Field(max_length=32)] | None
    ) = Field(
        default=None,
        description="Bids at which to report each ad's ITCTR, the other bids fixed, from the same samples",
    )


class AuctionRequest(StrictModel):
    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=Bounds.MAX_QUERY_CHARS)]
    user: User
    ads: Annotated[list[AdCandidate], Field(max_length=Bounds.MAX_ADS)]
    options: AuctionOptions = Field(default_factory=AuctionOptions)
    stream: StrictBool = Field(
        default=False,
        description="Stream the served answer as Server-Sent Events (OpenAI chat.completion.chunk format), "
        "then an `auction` event with this response's fields, then `[DONE]`",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> AuctionRequest:
        seen: set[str] = set()
        for ad in self.ads:
            if ad.id in seen:
                raise ValueError(f"duplicate ad id {ad.id!r}")
            seen.add(ad.id)
        return self

    @model_validator(mode="after")
    def _encodable(self) -> AuctionRequest:
        # JSON may escape lone UTF-16 surrogates ("\ud800") that no UTF-8 text (prompt, logs) can hold.
        try:
            json.dumps(self.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text must be valid Unicode (lone surrogate escapes are not)") from exc
        return self


class AdResult(BaseModel):
    id: str
    exposed: bool = Field(description="The ad is shown in the served answer")
    itctr: float = Field(description="Estimated P(shown and clicked) over the K samples")
    itctr_stderr: float | None = Field(description="Standard error of itctr; null when K = 1 or no sample shows it")
    itctr_upper: float | None = Field(
        default=None, description="95 % upper bound on itctr (≈3/K when no sample shows the ad)"
    )
    exposure_rate: float = Field(description="Probability that the served answer shows the ad (X_i under q)")
    expected_payment: float = Field(description="Expected payment p_i (first price: bid · itctr)")
    price_per_click: float = Field(description="Charged per click on the shown ad (first price: the bid)")
    implied_value_per_click: float = Field(description="The bid's value per click: the bid (UM), τ·bid (VM)")
    allocation_curve: list[float] | None = Field(default=None, description="itctr at options.allocation_curve bids")
    sponsored: bool = Field(default=True, description="Always true: every candidate is a paid placement")
    advertiser: str | None = Field(default=None, description="On whose behalf the ad is shown (and who pays)")
    why: str | None = Field(default=None, description="The main parameters that chose it, in words (EU DSA Art. 26)")
    click_url: str | None = Field(description="Signed tracking link; null when not exposed")


class IneligibleAd(BaseModel):
    id: str
    reason: str = Field(
        description="sensitive_topic, minor, below_reserve, blocked_category, advertiser_excluded, "
        "budget_exhausted, paced, frequency_capped or controls_unavailable"
    )


class AuctionResponse(BaseModel):
    auction_id: str
    text: str = Field(description="The served answer, ad markers rendered as Markdown links")
    raw_text: str = Field(description="The served sample as the model wrote it")
    served_index: int
    samples: int = Field(description="K")
    model: str = Field(description="The model version that sampled the answers")
    ctr_model: str = Field(description="The CTR model version that estimated ITCTR and payments")
    prompt_hash: str
    prompt_tokens: int = Field(description="Length of the prompt in the model's tokens")
    seed: int
    cache_hit: bool = Field(description="The K samples came from the sample cache, not the engine")
    ads: list[AdResult]
    format_errors: int = Field(description="Malformed or unknown ad markers stripped from the served answer")
    ineligible: list[IneligibleAd] = Field(default_factory=list, description="Candidates dropped before the prompt")
    sensitive_topic: str | None = Field(default=None, description="The topic the question was flagged for (no ads)")
    mechanism: dict[str, Any] = Field(
        description="selection, temperature (null: uniform), payment, bids_in_prompt, marker_grammar"
    )
    served_probability: float = Field(description="q of the served sample")
    probabilities: list[float] = Field(description="q_k of each of the K samples")
    objective: float = Field(description="Served sample's Σ b·ctr·1(exposed) − λ·s_resp")
    timings_ms: dict[str, float]
    sample_texts: list[str] | None = None
    sample_finish_reasons: list[str | None] | None = Field(
        default=None, description="Why each sample stopped (stop, length): with return_samples, beside sample_texts"
    )


__all__ = ["ErrorDetail", "ErrorResponse"]  # the one error shape lives in service.errors
