from connectors.http import scrubbed


def test_a_venue_answer_leaving_the_connector_hides_secret_fields_and_credential_text() -> None:
    answer = {"order_id": "1", "jwt": "eyJ.x.y", "nested": [{"Authorization": "Bearer abc"}, "token=abc&x=1"]}
    assert scrubbed(answer) == {"order_id": "1", "jwt": "***",
                                "nested": [{"Authorization": "***"}, 'token="***"&x=1']}
