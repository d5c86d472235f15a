"""The review queue of suspicious unlocks, for community managers: open flags first, most
suspicious first, each with its evidence; dismiss or revoke (analytics/review.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from analytics import review
from analytics.models import UnlockFlag

REVIEW = "analytics.review_unlockflag"
DECISIONS = {"dismiss": "Dismiss", "revoke": "Revoke the unlock"}
SHOWN_ELSEWHERE = {"rule", "weight", "detail"}


class RuleFilter(admin.SimpleListFilter):
    title = "rule"
    parameter_name = "rule"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(review.RULE_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[UnlockFlag]) -> QuerySet[UnlockFlag]:
        rule = self.value()
        if rule not in review.RULE_LABELS:
            return queryset
        # jsonb containment: an entry of the evidence list names this rule.
        return queryset.filter(evidence__contains=[{"rule": rule}])


@admin.register(UnlockFlag)
class UnlockFlagAdmin(admin.ModelAdmin):
    list_display = ("player", "game", "achievement_shown", "unlocked_at", "score", "rules", "state", "flagged_at")
    list_filter = ("status", ("game", admin.RelatedOnlyFieldListFilter), RuleFilter)
    list_select_related = ("player", "game", "achievement")
    search_fields = ("player__username", "achievement__api_name")
    actions = ["dismiss", "revoke"]
    fields = (
        "player",
        "game",
        "achievement_shown",
        "unlocked_at",
        "score",
        "evidence_table",
        "state",
        "flagged_at",
        "reviewed_by",
        "reviewed_at",
        "review_note",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[UnlockFlag]:
        # Open flags first, then dismissed, then revoked (the status values sort otherwise).
        position = Case(
            When(status=UnlockFlag.Status.OPEN, then=Value(0)),
            When(status=UnlockFlag.Status.DISMISSED, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
        flags = UnlockFlag.objects.select_related("player", "game", "achievement").annotate(queue_position=position)
        return flags.order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        return ("queue_position", "-score", "-flagged_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # flags come from the scoring job only

    def has_delete_permission(self, request: HttpRequest, obj: UnlockFlag | None = None) -> bool:
        return False  # the queue is also the record of what was decided

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVIEW)

    @admin.display(description="achievement", ordering="achievement__api_name")
    def achievement_shown(self, flag: UnlockFlag) -> str:
        return f"{flag.achievement.name} ({flag.achievement.api_name})"

    @admin.display(description="rules")
    def rules(self, flag: UnlockFlag) -> str:
        return ", ".join(review.RULE_LABELS.get(item.get("rule"), item.get("rule", "?")) for item in flag.evidence)

    @admin.display(description="status", ordering="status")
    def state(self, flag: UnlockFlag) -> str:
        if flag.status == UnlockFlag.Status.OPEN and flag.unlock_id is None:
            return "Open (the unlock was already revoked elsewhere)"
        return flag.get_status_display()

    @admin.display(description="evidence")
    def evidence_table(self, flag: UnlockFlag) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    review.RULE_LABELS.get(item.get("rule"), item.get("rule", "?")),
                    item.get("weight", ""),
                    item.get("detail", ""),
                    "; ".join(f"{key}: {value}" for key, value in item.items() if key not in SHOWN_ELSEWHERE),
                )
                for item in flag.evidence
            ),
        )
        return format_html(
            "<table><thead><tr><th>Rule</th><th>Weight</th><th>What was seen</th><th>Numbers</th></tr></thead>"
            "<tbody>{}</tbody></table><p>Score {} (flagged at {} or more).</p>",
            rows,
            f"{flag.score:g}",
            review.FLAG_THRESHOLD,
        )

    # --- Dismiss and revoke ---------------------------------------------------------------

    @admin.action(description="Dismiss", permissions=["review"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet[UnlockFlag]) -> HttpResponse | None:
        return self._decide(request, list(queryset), "dismiss")

    @admin.action(description="Revoke the unlock", permissions=["review"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[UnlockFlag]) -> HttpResponse | None:
        return self._decide(request, list(queryset), "revoke")

    def _decide(self, request: HttpRequest, flags: list[UnlockFlag], decision: str) -> HttpResponse | None:
        """Ask for the note (a reason, required, to revoke), then apply the decision to each
        flag. Returns the page asking, or None once done (a message says what happened)."""
        note = request.POST.get("note", "").strip()
        error = ""
        if request.POST.get("confirm") == "yes":
            if decision == "revoke" and not note:
                error = "A revocation needs a reason: it goes to the moderation log."
            else:
                self._apply(request, flags, decision, note)
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{DECISIONS[decision]}: {len(flags)} flagged unlock(s)",
            "opts": self.model._meta,
            "flags": flags,
            "decision": decision,
            "action": request.POST.get("action", ""),
            "note": note,
            "error": error,
        }
        return TemplateResponse(request, "admin/analytics/unlockflag/review.html", context)

    def _apply(self, request: HttpRequest, flags: list[UnlockFlag], decision: str, note: str) -> None:
        outcomes: Counter[review.Decided] = Counter()
        for flag in flags:
            if decision == "revoke":
                outcomes[review.revoke_flagged_unlock(flag=flag, reviewer=request.user, reason=note)] += 1
            else:
                outcomes[review.dismiss_flag(flag=flag, reviewer=request.user, note=note)] += 1
        done = "Revoked" if decision == "revoke" else "Dismissed"
        parts = [f"{done} {outcomes[review.Decided.DONE]}."]
        if outcomes[review.Decided.ALREADY_GONE]:
            parts.append(
                f"{outcomes[review.Decided.ALREADY_GONE]} unlock(s) had already been revoked elsewhere: "
                "flag(s) closed as revoked."
            )
        if outcomes[review.Decided.NOT_OPEN]:
            parts.append(f"{outcomes[review.Decided.NOT_OPEN]} had been reviewed already and were left as they were.")
        self.message_user(request, " ".join(parts), messages.SUCCESS)

    # --- The same decisions from a flag's own page ----------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/review/<str:decision>/",
                self.admin_site.admin_view(self.review_view),
                name="analytics_unlockflag_review",
            )
        ]
        return own + super().get_urls()

    def review_view(self, request: HttpRequest, object_id: str, decision: str) -> HttpResponse:
        if not self.has_review_permission(request):
            raise PermissionDenied
        flag = self.get_object(request, object_id)
        if flag is None or decision not in DECISIONS:
            raise Http404("No such flag or decision.")
        response = self._decide(request, [flag], decision)
        if response is None:
            return HttpResponseRedirect(reverse("admin:analytics_unlockflag_change", args=[flag.pk]))
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Nothing on the page is edited by hand: decisions go through the two buttons.
        context = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
            "can_review": self.has_review_permission(request),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)
